"""The pages' torch work runs on one long-lived thread (a fresh thread per rerun would rebuild torch's OpenMP
team every time); results and exceptions come back to the caller."""

import threading

import pytest

from explorer.core import torch_worker


def test_work_runs_on_one_other_thread_and_returns_its_result():
    names = {torch_worker.run(lambda: threading.current_thread().name) for _ in range(3)}
    assert len(names) == 1 and names != {threading.current_thread().name}
    # From several threads at once too (Streamlit runs each session's rerun in its own thread).
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(torch_worker.run(lambda: threading.current_thread().name)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(seen) == names
    assert torch_worker.run(lambda a, b=0: a + b, 2, b=3) == 5


def test_exceptions_reach_the_caller():
    with pytest.raises(ValueError, match="bad"):
        torch_worker.run(lambda: (_ for _ in ()).throw(ValueError("bad")))


def test_work_that_itself_asks_for_the_torch_thread_does_not_hang():
    assert torch_worker.run(lambda: torch_worker.run(lambda: 7) + 1) == 8


def test_a_job_gets_one_torch_thread_while_others_wait_and_all_of_them_alone():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        threads = torch_worker._Threads()
        threads.set_for(waiting=0)
        assert torch.get_num_threads() == 2  # alone: what torch had
        threads.set_for(waiting=3)
        assert torch.get_num_threads() == 1  # a class waits: the other core is the server's
        threads.set_for(waiting=0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
