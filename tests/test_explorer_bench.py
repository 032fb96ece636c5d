"""python -m explorer.tools.bench runs end to end and prints its figures as JSON lines (speed is never asserted)."""

import json
import math

import pytest

from explorer.tools.bench import main


@pytest.mark.slow
def test_rerun_and_tsne_figures_are_printed(capsys):
    main(["--only", "rerun", "--reruns", "2", "--only", "tsne", "--tsne-points", "200"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    figures = {line["figure"]: line for line in lines}
    assert {"machine", "rerun_after_slider_ms", "bare_forward_diagnostics_ms", "rerun_over_bare", "tsne_s",
            "tsne_page_first_s", "tsne_page_cached_s"} <= set(figures)
    assert figures["machine"]["cores"] >= 1 and figures["machine"]["torch"]
    for name in ("rerun_after_slider_ms", "bare_forward_diagnostics_ms", "rerun_over_bare", "tsne_s"):
        assert math.isfinite(figures[name]["value"]) and figures[name]["value"] > 0
    assert figures["rerun_after_slider_ms"]["p95_ms"] >= figures["rerun_after_slider_ms"]["value"]
    # Timed as a browser sees a move: the sampling page's fragment reruns alone; AppTest's whole run beside it.
    assert figures["rerun_after_slider_ms"]["fragment_reruns"] == 2
    assert figures["apptest_full_rerun_ms"]["value"] > 0 and figures["machine"]["load_average"]
    assert figures["tsne_s"]["codes"] == 200 and figures["tsne_page_first_s"]["codes"] == 200
