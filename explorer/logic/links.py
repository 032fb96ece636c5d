"""A page's settings as URL query parameters: what each setting may hold, reading one from the text of a link (anything
a visitor can type is refused unless it is a value the page's control offers) and writing it back as short text."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# A value longer than this is refused before it is parsed: no control of the app needs more.
LONGEST_VALUE = 80
# How a link names its model: the folder under the checkpoints folder (celeba/dcgan).
MODEL_PARAM = "model"
SEED_RANGE = (0, 2**31 - 1)


class Refused(ValueError):
    """The text is not a value this setting can take."""


def number_text(value: float | int) -> str:
    """A number as short text that reads back as the same number (2.0 -> 2, 0.15000000000000002 -> 0.15 only if
    equal)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    short = f"{float(value):.12g}"
    return short if float(short) == float(value) else repr(float(value))


def _finite(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise Refused("not a number") from None
    if not math.isfinite(value):
        raise Refused("not a finite number")
    return value


def _on_step(value: float, low: float, step: float | None) -> bool:
    if not step:
        return True
    k = (value - low) / step
    return abs(k - round(k)) < 1e-6


@dataclass(frozen=True)
class Field:
    """One linkable setting: the session-state key of its control, its name in the URL, and what it may hold.

    kind: "number" (low..high, on `step` from low when given; `integer` makes an int), "span" (two numbers
    "a,b" with low <= a <= b <= high), "choice" (one of `options`, compared as text; options None: any short text,
    the page itself checks it against what it offers), "flag" (true/false)."""

    key: str
    name: str = ""
    kind: str = "number"
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    integer: bool = False
    options: tuple | None = None

    @property
    def param(self) -> str:
        return self.name or self.key

    def parse(self, text: object):
        """The value the text stands for; Refused when it is not one the control offers."""
        if not isinstance(text, str):
            raise Refused("not text")
        text = text.strip()
        if not text or len(text) > LONGEST_VALUE:
            raise Refused("empty or too long")
        if self.kind == "number":
            return self._number(text)
        if self.kind == "span":
            parts = text.split(",")
            if len(parts) != 2:
                raise Refused("not two numbers")
            a, b = (self._number(p.strip()) for p in parts)
            if a > b:
                raise Refused("the first number is larger")
            return (a, b)
        if self.kind == "flag":
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise Refused("not true or false")
        if self.kind == "choice":
            if self.options is None:
                if not text.isprintable():
                    raise Refused("unprintable")
                return text
            for option in self.options:
                if self.text(option) == text:
                    return option
            # A number written another way (2 for 2.0) still names the option.
            for option in self.options:
                if isinstance(option, (int, float)) and not isinstance(option, bool):
                    try:
                        if float(text) == float(option):
                            return option
                    except ValueError:
                        break
            raise Refused("not one of the options")
        raise Refused(f"unknown kind {self.kind}")

    def _number(self, text: str):
        value = _finite(text)
        if not (self.low <= value <= self.high) or not _on_step(value, self.low, self.step):
            raise Refused("outside the control's range")
        if self.integer:
            if not value.is_integer():
                raise Refused("not a whole number")
            return int(value)
        return value

    def text(self, value) -> str:
        """The value as it is written in a link."""
        if self.kind == "span":
            return ",".join(number_text(v) for v in value)
        if self.kind == "flag":
            return "true" if value else "false"
        if isinstance(value, (int, float)) and not isinstance(value, str):
            return number_text(value)
        return str(value)


def number(key: str, low: float, high: float, step: float | None = None, name: str = "") -> Field:
    return Field(key, name, "number", float(low), float(high), step)


def whole(key: str, low: int, high: int, step: int | None = None, name: str = "") -> Field:
    return Field(key, name, "number", float(low), float(high), step, integer=True)


def seed(key: str, name: str = "") -> Field:
    return whole(key, *SEED_RANGE, name=name)


def span(key: str, low: float, high: float, step: float | None = None, name: str = "") -> Field:
    return Field(key, name, "span", float(low), float(high), step)


def choice(key: str, options: Sequence | None, name: str = "") -> Field:
    return Field(key, name, "choice", options=None if options is None else tuple(options))


def flag(key: str, name: str = "") -> Field:
    return Field(key, name, "flag")


@dataclass(frozen=True)
class Reading:
    """What a link asked of a page's fields: the values to set (by session-state key) and the URL names refused."""

    values: dict
    refused: tuple[str, ...]


def read(fields: Sequence[Field], params: Mapping[str, str]) -> Reading:
    """The fields' values from a link's parameters; a missing one is left alone, a refused one named."""
    values, refused = {}, []
    for field in fields:
        if field.param not in params:
            continue
        try:
            values[field.key] = field.parse(params[field.param])
        except Refused:
            refused.append(field.param)
    return Reading(values, tuple(refused))


def written(fields: Sequence[Field], state: Mapping, defaults: Mapping) -> dict[str, str]:
    """The URL parameters that describe the fields' current values: only those that differ from the page's
    defaults (a short link), and only values a link could read back."""
    out = {}
    for field in fields:
        if field.key not in state:
            continue
        value = state[field.key]
        if field.key in defaults and _same(value, defaults[field.key]):
            continue
        text = field.text(value)
        try:
            field.parse(text)
        except Refused:
            continue  # a value no link can carry (a name longer than a link allows): the page's default instead
        out[field.param] = text
    return out


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def refused_sentence(names: Sequence[str], shown: int = 6) -> str:
    """The one sentence a page says when a link asked for values it cannot show."""
    names = list(dict.fromkeys(n[:40] for n in names))
    listed = ", ".join(f"`{n}`" for n in names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown
                                                           else "")
    return (f"This link asked for settings this page cannot show ({listed}: not a model on this server or not a "
            "value the controls offer), so those start from their defaults.")


def query_string(params: Mapping[str, str]) -> str:
    """`?a=1&b=2`, escaped for a URL."""
    from urllib.parse import urlencode

    return "?" + urlencode(params, safe="/,:()") if params else ""
