"""A classroom at once: start the real server on a free 127.0.0.1 port and drive N browser-like sessions over
Streamlit's websocket protocol, each moving the sampling page's sliders for a bounded time.

    python -m explorer.tools.loadtest --sessions 30 --seconds 60 [--checkpoints DIR | --model BUNDLE] [--think 1.0]
    python -m explorer.tools.loadtest --mode presets      # everyone clicks the same preset buttons in turn
    python -m explorer.tools.loadtest --replicas 2        # N replicas behind nginx (explorer.tools.replicas)
    python -m explorer.tools.loadtest --url http://HOST:PORT   # a server or proxy that is already running

Each session does what a browser tab does: opens /_stcore/stream, asks for a run of the app, then sends
`rerun_script` messages carrying its widget values (protobuf BackMsg; the server answers with ForwardMsg deltas)
and fetches every image the page shows from /media. One interaction = one slider change, timed from the
message to the end of the script run plus the image downloads. Prints one JSON line per figure; exits 1 when
any session saw an error, no interaction completed, a model was loaded more than once, or (through a proxy) a
session was served by more than one replica. Like a browser, a session first loads the page over HTTP and keeps
the cookies it is given (a proxy's sticky-session cookie); the proxy's X-Upstream header, on every response,
says which replica answered.

A session is `explorer.tools.stream_session.Session` (the wire format, no browser needed) and the server
`explorer.tools.app_server.Server`; this module is the classroom: what students do, for how long, and the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field

from explorer.tools.app_server import LOAD_LOG_LINE, MemorySampler, Server, ServerError, one_model, rss_bytes
from explorer.tools.stream_session import RunResult, Session

# The sampling page's sliders and the values a student might drag them to (their full ranges; std > 0).
SLIDERS = {
    "mean": [x / 2 for x in range(-40, 41)],
    "std": [round(0.05 * k, 2) for k in range(1, 101)],
    "n": list(range(1, 129)),
}
# How a script run that went well ends: the whole page, or only the st.fragment whose control moved.
FINISHED = ("FINISHED_SUCCESSFULLY", "FINISHED_FRAGMENT_RUN_SUCCESSFULLY")
# The sampling page's preset buttons, in the order a teacher walks the class through them.
PRESET_KEYS = ["preset_N(0,1)", "preset_N(-10,1)", "preset_U(0,1)", "preset_U(-1,1)"]


@dataclass
class Tally:
    interactions: int = 0
    page_loads: int = 0
    latencies: list[float] = field(default_factory=list)
    first_block_only: int = 0  # interactions answered with the sampling page's busy-server first block
    errors: list[str] = field(default_factory=list)
    upstreams: list[set[str]] = field(default_factory=list)  # per session: the replicas that answered it


def next_change(session: Session, mode: str, rng: random.Random, done: int) -> None:
    """sliders: drag one slider to a random value; presets: click the next preset (everyone walks the same
    list in the same order, as when a teacher says "now everyone click N(-10,1)")."""
    if mode == "presets":
        session.click(PRESET_KEYS[(done + 1) % len(PRESET_KEYS)])
    else:
        key = rng.choice(list(SLIDERS))
        session.set_value(key, double_array_value=[rng.choice(SLIDERS[key])])


async def drive(server_url: str, think: float, rng: random.Random, tally: Tally, deadline: float,
                timeout: float = 180, mode: str = "sliders") -> None:
    """One student: open the page, then move a slider (or click a preset), wait for the picture, think, and
    again until the deadline. Every session makes at least one change, so a slow machine still measures
    something."""
    session = Session(server_url, timeout)
    try:
        async with session:
            first = await session.rerun()
            tally.page_loads += 1
            problems = _problems(first)
            if problems:
                tally.errors += problems
                return
            missing = [k for k in [*SLIDERS, *PRESET_KEYS] if k not in session.widget_ids]
            if missing:
                tally.errors.append(f"the sampling page has no widget {missing} (is there a model bundle?)")
                return
            done = 0
            while done == 0 or time.monotonic() < deadline:
                next_change(session, mode, rng, done)
                result = await session.rerun()
                done += 1
                tally.interactions += 1
                tally.latencies.append(result.seconds)
                tally.first_block_only += result.first_block_only
                tally.errors += _problems(result)
                pause = rng.uniform(0.5 * think, 1.5 * think)
                if time.monotonic() + pause >= deadline:
                    break
                await asyncio.sleep(pause)
    except Exception as exc:  # noqa: BLE001 - a dropped connection or a timeout is a finding, not a crash
        tally.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
    finally:
        tally.upstreams.append(set(session.upstreams))


def _problems(result: RunResult) -> list[str]:
    # st.error boxes are not counted: the sampling page's "Collapsed" verdict is one, and a correct answer.
    problems = [f"exception on the page: {e}" for e in result.exceptions]
    if result.status not in FINISHED:
        problems.append(f"script run ended with {result.status}")
    return problems


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def run_loadtest(sessions: int = 30, seconds: float = 60, checkpoints: str | None = None, think: float = 1.0,
                 seed: int = 0, server: Server | None = None, warmup_timeout: float = 900, mode: str = "sliders",
                 url: str | None = None, replicas: int = 0, threads: int | None = None) -> dict:
    """Start the server (or use the running `server`, or the server or proxy at `url`, or start `replicas` servers
    behind nginx), warm it with one session, run the classroom, and return the figures. The clock starts after the
    warm-up: the first model load is not a classroom's steady state. Memory and model loads are measured on the
    servers this process started."""
    with contextlib.ExitStack() as stack:
        servers: list[Server] = []
        if url is None and replicas:
            from explorer.tools.replicas import replicas_behind_proxy

            proxy, servers = stack.enter_context(replicas_behind_proxy(replicas, checkpoints=checkpoints,
                                                                       threads=threads))
            url = proxy.url
        elif url is None:
            if server is None:
                server = Server.start(checkpoints, threads=threads)
                stack.callback(server.stop)
            servers, url = [server], server.url
        url = url.rstrip("/")
        # The first run imports torch and plotly in the server and loads the model: minutes on a starved machine.
        # Behind a proxy each replica needs its warm-up: sessions until every replica has answered one.
        for attempt in range(max(1, 4 * len(servers))):
            warm = Tally()
            asyncio.run(drive(url, 0, random.Random(seed + attempt), warm, time.monotonic(), timeout=warmup_timeout,
                              mode=mode))
            if warm.errors:
                return {"sessions": sessions, "seconds": seconds, "interactions": 0, "errors": len(warm.errors),
                        "error_examples": warm.errors[:5], "warmup_failed": True}
            if len(servers) <= 1 or all(s.model_loads() for s in servers):
                break
        pids = [s.process.pid for s in servers]
        rss_before = sum(rss_bytes(pid) for pid in pids)
        sampler = MemorySampler(pids)
        sampler.start()
        tally = Tally()
        load = os.getloadavg()[0]

        async def classroom() -> None:
            deadline = time.monotonic() + seconds
            await asyncio.gather(*(drive(url, think, random.Random(seed * 1000 + i), tally, deadline, mode=mode)
                                   for i in range(sessions)))

        start = time.monotonic()
        asyncio.run(classroom())
        elapsed = time.monotonic() - start
        samples = sampler.stop() or [rss_before]
        mb = 2**20
        figures = {
            "mode": mode,
            "sessions": sessions,
            "seconds": seconds,
            "elapsed_s": round(elapsed, 1),
            "interactions": tally.interactions,
            "page_loads": tally.page_loads,
            "errors": len(tally.errors),
            "error_examples": tally.errors[:5],
            "latency_p50_s": _round(percentile(tally.latencies, 50)),
            "latency_p95_s": _round(percentile(tally.latencies, 95)),
            "latency_max_s": _round(max(tally.latencies, default=None)),
            "interactions_per_s": round(tally.interactions / elapsed, 2) if elapsed else None,
            # The share of answers that were the page's first block of 16 samples while the queue was long.
            "first_block_only_share": round(tally.first_block_only / tally.interactions, 3)
            if tally.interactions else None,
            "load_average_at_start": round(load, 2),
            "cpu_count": os.cpu_count(),
        }
        if servers:
            loads = [line for s in servers for line in s.model_loads()]
            distinct = {(i, line.rsplit(LOAD_LOG_LINE, 1)[1].strip()) for i, s in enumerate(servers)
                        for line in s.model_loads()}
            figures.update({
                "servers": len(servers),
                "server_rss_mb_before": round(rss_before / mb, 1),
                "server_rss_mb_peak": round(max(samples) / mb, 1),
                "server_rss_mb_end": round(samples[-1] / mb, 1),
                "server_rss_mb_per_session": round((max(samples) - rss_before) / mb / sessions, 2),
                # Each real load writes one log line; one per distinct bundle and server means sessions shared it.
                "model_loads": len(loads),
                "distinct_models": len(distinct),
            })
        if any(tally.upstreams):
            per_replica: dict[str, int] = {}
            for seen in tally.upstreams:
                for upstream in seen:
                    per_replica[upstream] = per_replica.get(upstream, 0) + 1
            figures.update({
                "replicas_seen": len(per_replica),
                "sessions_per_replica": dict(sorted(per_replica.items())),
                "sessions_on_one_replica": sum(len(seen) == 1 for seen in tally.upstreams),
                "every_session_on_one_replica": all(len(seen) == 1 for seen in tally.upstreams),
            })
        return figures


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.tools.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30, help="concurrent browser-like sessions (default 30)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they move sliders (default 60)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean pause between a picture arriving and the next slider move, seconds (default 1)")
    parser.add_argument("--mode", choices=("sliders", "presets"), default="sliders",
                        help="sliders: each session drags sliders to random values; presets: every session clicks "
                             "the same preset buttons in the same order (default sliders)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--checkpoints", help="bundle folder for the server (default: the app's checkpoints/)")
    where.add_argument("--model", help="one bundle folder: the server offers only it (e.g. checkpoints/toyfaces/dcgan)")
    parser.add_argument("--replicas", type=int, default=0,
                        help="start this many servers behind nginx (explorer.tools.replicas) and test the proxy")
    parser.add_argument("--url", help="test a server or proxy that is already running at this address instead")
    parser.add_argument("--threads", type=int, help="torch threads in each server started (OMP_NUM_THREADS)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0 or args.think < 0 or args.replicas < 0:
        parser.error("--sessions must be at least 1, --seconds above 0, --think and --replicas at least 0")
    if args.url and (args.replicas or args.checkpoints or args.model):
        parser.error("--url tests a running server: --replicas, --checkpoints and --model start servers")
    try:
        with contextlib.ExitStack() as stack:
            checkpoints = stack.enter_context(one_model(args.model)) if args.model else args.checkpoints
            figures = run_loadtest(args.sessions, args.seconds, checkpoints, args.think, args.seed, mode=args.mode,
                                   url=args.url, replicas=args.replicas, threads=args.threads)
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model:
        figures["model"] = args.model
    for name, value in figures.items():
        print(json.dumps({"figure": name, "value": value}))
    failed = figures["errors"] > 0 or figures["interactions"] == 0 or \
        figures.get("model_loads", 0) > figures.get("distinct_models", 0) or \
        not figures.get("every_session_on_one_replica", True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
