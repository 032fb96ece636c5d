"""Does a live run slow the other sessions down? (`python -m explorer.tools.live_bench`; one JSON line per figure.)

One AppTest session moves the sampling page's mean slider and times each rerun, in blocks: idle, then while a live
run trains (started through the server's own manager, as the Train live page starts it: the page's default DCGAN on
toy faces, 32x32, width 32, batch 64, its own process with 1 torch thread), then idle again, and so on. The blocks
alternate so that a machine getting busier or quieter during the measurement weighs on both alike; each figure is
the median over its blocks' reruns, and the ratio is live / idle (the issue's bar: under 2).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from explorer.tools.bench import APP, MEANS, emit, machine, p95
from training.live import protocol
from training.live.manager import LiveRuns
from training.live.settings import LiveSettings


def rerun_times(at, count: int, offset: int) -> list[float]:
    times = []
    for i in range(count):
        at.slider(key="mean").set_value(MEANS[(offset + i) % len(MEANS)])
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
        if at.exception:
            raise SystemExit(f"the sampling page failed: {at.exception}")
    return times


def wait_running(runs: LiveRuns, owner: str, deadline: float = 600) -> dict:
    end = time.time() + deadline
    while time.time() < end:
        status = runs.status(owner) or {}
        if status.get("state") == "running" and status.get("step", 0) >= 2:
            return status
        if status.get("state") in protocol.ENDED:
            raise SystemExit(f"the live run ended: {status.get('message')}")
        time.sleep(0.5)
    raise SystemExit("the live run did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.tools.live_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=3, help="idle and live blocks each (default 3)")
    parser.add_argument("--reruns", type=int, default=12, help="slider moves timed per block (default 12)")
    parser.add_argument("--width", type=int, default=32, help="the live run's network width (the page's 32)")
    args = parser.parse_args(argv)
    from streamlit.testing.v1 import AppTest

    emit("machine", None, "", **machine())
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    rerun_times(at, 3, 0)  # warm up: model loaded, caches filled
    idle, live, speeds = [], [], []
    with tempfile.TemporaryDirectory(prefix="live-bench-") as scratch:
        runs = LiveRuns(limit=1, threads=1, root=Path(scratch))
        try:
            for block in range(args.blocks):
                idle += rerun_times(at, args.reruns, 2 * block * args.reruns)
                runs.submit("class", LiveSettings(width=args.width), alive=lambda: True)
                wait_running(runs, "class")
                live += rerun_times(at, args.reruns, (2 * block + 1) * args.reruns)
                speeds.append((runs.status("class") or {}).get("steps_per_second", 0.0))
                runs.stop("class")
                runs.forget("class")
        finally:
            runs.shutdown()
    what = (f"sampling page rerun after a mean-slider move (AppTest), median of {args.blocks} x {args.reruns} "
            "reruns")
    emit("rerun_idle_ms", 1000 * statistics.median(idle), "ms", p95_ms=round(1000 * p95(idle), 1),
         what=what + ", no live run")
    emit("rerun_while_live_ms", 1000 * statistics.median(live), "ms", p95_ms=round(1000 * p95(live), 1),
         what=what + f", a live DCGAN (width {args.width}, 1 torch thread) training in its own process",
         live_steps_per_second=[round(s, 2) for s in speeds])
    emit("live_over_idle", statistics.median(live) / statistics.median(idle), "ratio", target="< 2")
    emit("live_over_idle_p95", p95(live) / p95(idle), "ratio", what="the slowest 5% of reruns, live / idle")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
