"""How every benchmark prints: one JSON object per line on stdout, flushed at once (a reader may follow a long run
as it goes). Progress and notes go to stderr, so stdout stays machine-readable."""

from __future__ import annotations

import json


def emit_record(record: dict) -> None:
    print(json.dumps(record), flush=True)


def emit(figure: str, value: float | int | None, unit: str, **extra) -> None:
    """One figure: its name, value (floats rounded to 4 decimals) and unit, plus whatever context it needs."""
    if isinstance(value, float):
        value = round(value, 4)
    emit_record({"figure": figure, "value": value, "unit": unit, **extra})
