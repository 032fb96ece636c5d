"""When the torch worker is busy with other sessions' requests, a page says where its request stands instead of
spinning silently, and mentions a long wait where the pictures appear."""

import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.core import torch_worker
from explorer.core.page import queue_text

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "app.py")


def block_worker(seconds: float) -> threading.Thread:
    """Occupy the torch worker as a classroom's requests would, and return once it is busy."""
    before = torch_worker.queue_length()
    blocker = threading.Thread(target=torch_worker.run, args=(time.sleep, seconds), daemon=True)
    blocker.start()
    while torch_worker.queue_length() <= before:
        time.sleep(0.01)
    return blocker


def test_a_waiting_request_hears_its_place_in_the_queue_and_the_end_of_the_wait():
    heard: list = []
    blockers = [block_worker(1.0), block_worker(1.0)]

    def ask():
        torch_worker.set_wait_listener(heard.append)
        torch_worker.run(lambda: 42)

    asking = threading.Thread(target=ask)
    asking.start()
    asking.join(30)
    for b in blockers:
        b.join(30)
    states = [s for s in heard if s is not None]
    assert states and heard[-1] is None  # told while waiting, then told the wait is over
    assert states[0].ahead >= 1 and states[0].expected_s > 0
    assert [s.ahead for s in states] == sorted((s.ahead for s in states), reverse=True)
    assert "ahead of yours" in queue_text(states[0])


@pytest.mark.slow
def test_the_sampling_page_says_it_waited_for_a_busy_server():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()  # loads the model: the wait below is the queue's alone
    assert not at.exception, at.exception
    assert not any("waited" in c.value for c in at.caption)
    blocker = block_worker(4.0)
    at.number_input(key="seed").set_value(987654).run()  # a batch nobody asked for yet: it queues
    blocker.join(30)
    assert not at.exception, at.exception
    waited = [c.value for c in at.caption if "waited" in c.value]
    assert waited and "for the server" in waited[0], [c.value for c in at.caption]
    assert len(at.get("image")) >= 1  # and the pictures came


class Replaced(Exception):
    """What Streamlit raises in a script run whose user has already asked for another."""


CALLS: list[int] = []


def forward(x: int) -> int:  # module level: a request's function needs a stable name to be shared
    CALLS.append(x)
    return x * 2


def test_a_run_stopped_while_others_wait_for_its_request_still_delivers_their_result():
    calls = CALLS
    blocker = block_worker(1.5)
    got, errors = [], []

    def leader():
        def impatient(state):
            if state is not None:
                raise Replaced()

        torch_worker.set_wait_listener(impatient)
        try:
            torch_worker.shared(forward, 21)
        except Replaced:
            errors.append("leader stopped")

    def follower():
        got.append(torch_worker.shared(forward, 21))

    first = threading.Thread(target=leader)
    first.start()
    time.sleep(0.2)  # the leader's request is in flight
    second = threading.Thread(target=follower)
    second.start()
    for t in (first, second, blocker):
        t.join(30)
    assert errors == ["leader stopped"]  # its own run is stopped, as Streamlit asked
    assert got == [42] and calls == [21]  # the waiting session still gets the one computation's result
    assert torch_worker.shared(forward, 21) == 42 and calls == [21]  # and it was kept
