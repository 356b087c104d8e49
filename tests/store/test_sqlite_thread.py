import asyncio
import threading
import time

import pytest

from threadloom.store._sqlite_thread import StoreThread


async def test_calls_run_in_turn_on_the_one_thread_and_answer_their_callers() -> None:
    thread = StoreThread("t")
    ran: list[tuple[int, str]] = []

    def call(i: int) -> int:
        ran.append((i, threading.current_thread().name))
        time.sleep(0.001)
        return i * 10

    assert await asyncio.gather(*(thread.run(lambda i=i: call(i)) for i in range(5))) == [0, 10, 20, 30, 40]
    assert ran == [(i, "t") for i in range(5)]
    thread.stop()


async def test_an_exception_is_raised_to_its_caller_and_the_thread_goes_on() -> None:
    thread = StoreThread("t")

    def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await thread.run(fails)
    assert await thread.run(lambda: 1) == 1
    thread.stop()


async def test_a_caller_that_stops_waiting_leaves_the_call_to_run_and_the_next_answered() -> None:
    thread = StoreThread("t")
    started, ran = threading.Event(), threading.Event()

    def slow() -> int:
        started.set()
        time.sleep(0.05)
        ran.set()
        return 1

    waiting = asyncio.ensure_future(thread.run(slow))
    await asyncio.to_thread(started.wait)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await thread.run(lambda: 2) == 2  # after the cancelled call, which ran to its end
    assert ran.is_set()
    thread.stop()


def test_callers_on_two_event_loops_are_each_answered_on_their_own() -> None:
    thread = StoreThread("t")
    assert asyncio.run(thread.run(lambda: "first")) == "first"
    assert asyncio.run(thread.run(lambda: "second")) == "second"  # another loop
    done = threading.Event()
    thread.submit(done.set)
    assert done.wait(5)
    thread.stop()
