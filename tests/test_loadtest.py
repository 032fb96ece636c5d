"""A short classroom (5 sessions, 10 s) against the real server on 127.0.0.1, over Streamlit's websocket protocol."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from explorer.tools.app_server import Server
from explorer.tools.loadtest import run_loadtest
from explorer.tools.stream_session import Session

pytestmark = pytest.mark.slow  # a real server and a classroom of sessions

@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("loadtest-checkpoints")
    shutil.copytree(tiny_bundle, root / "toyfaces" / "dcgan")
    running = Server.start(str(root))
    yield running
    running.stop()


def test_five_sessions_for_ten_seconds(server):
    figures = run_loadtest(sessions=5, seconds=10, think=0.2, server=server)
    assert figures["errors"] == 0, figures["error_examples"]
    assert figures["interactions"] >= 5  # every session moved a slider at least once
    assert figures["page_loads"] == 5
    assert 0 < figures["latency_p50_s"] <= figures["latency_p95_s"]
    # The model was loaded once for the whole server, not once per session.
    assert figures["model_loads"] == figures["distinct_models"] == 1
    assert figures["server_rss_mb_peak"] >= figures["server_rss_mb_before"] > 50


def test_forged_values_break_only_the_forging_tab(server):
    """A browser cannot send NaN for an integer input or an option index past the end; a forged message can, and
    Streamlit 1.67 then raises inside its own widget-state code, before any page code, on every later rerun of that
    session (tests/test_app_bad_input.py). The damage stays in that tab: others carry on, a reload starts clean."""

    async def scenario():
        async with Session(server.url) as forger, Session(server.url) as bystander:
            assert not (await forger.rerun()).exceptions
            assert not (await bystander.rerun()).exceptions
            forger.set_value("seed", double_value=float("nan"))
            forged = await forger.rerun()
            bystander.set_value("mean", double_array_value=[2.5])
            other = await bystander.rerun()
            # Out-of-range values for a float slider are reset by Streamlit, and the page explains the result.
            bystander.set_value("std", double_array_value=[float("inf")])
            reset = await bystander.rerun()
        async with Session(server.url) as reloaded:
            fresh = await reloaded.rerun()
        return forged, other, reset, fresh

    forged, other, reset, fresh = asyncio.run(scenario())
    assert forged.exceptions and "NaN" in forged.exceptions[0]
    # A slider of the sampling page sits in its st.fragment: moving it reruns that part alone, as in a browser.
    assert not other.exceptions and other.images and other.status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"
    assert not reset.exceptions and any("std > 0" in e for e in reset.page_errors)
    assert not fresh.exceptions and fresh.images and fresh.status == "FINISHED_SUCCESSFULLY"


def test_a_class_clicking_the_same_presets_is_served_from_the_shared_cache(server):
    figures = run_loadtest(sessions=5, seconds=8, think=0.2, server=server, mode="presets")
    assert figures["mode"] == "presets" and figures["errors"] == 0, figures["error_examples"]
    assert figures["interactions"] >= 5
