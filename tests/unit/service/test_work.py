"""The work pool: a cancelled caller waits for its running thread, queued work never starts,
and a deadline stops work where it is checked."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.inference.work import Deadline, DeadlineExceeded, WorkPool


def test_a_deadline_passes_once_its_time_is_up():
    deadline = Deadline.after(0.05)
    deadline.check()
    assert 0 < deadline.remaining() <= 0.05
    time.sleep(0.06)
    with pytest.raises(DeadlineExceeded, match="0.05 s"):
        deadline.check()


def test_cancelling_the_caller_waits_for_the_running_thread_to_stop():
    pool = WorkPool(1)
    events: list[str] = []
    started = threading.Event()

    def work(deadline: Deadline) -> None:
        started.set()
        while True:  # a loop that checks its deadline, as decoding does between rows
            time.sleep(0.01)
            deadline.check()

    async def main() -> None:
        task = asyncio.ensure_future(pool.run(work, Deadline.after(0.3)))
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            events.append("cancelled")

    began = time.monotonic()
    asyncio.run(main())
    waited = time.monotonic() - began
    pool.shutdown()
    assert events == ["cancelled"]
    assert 0.28 < waited < 1.0  # the cancellation completed when the work stopped at its deadline


def test_work_still_queued_when_its_caller_gives_up_never_runs():
    pool = WorkPool(1)
    ran: list[int] = []
    release = threading.Event()

    async def main() -> None:
        first = asyncio.ensure_future(pool.run(release.wait, 5))
        second = asyncio.ensure_future(pool.run(ran.append, 2))
        await asyncio.sleep(0.05)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        release.set()
        assert await first is True

    asyncio.run(main())
    pool.shutdown()
    assert ran == []


def test_errors_of_the_work_reach_the_caller():
    pool = WorkPool(2)

    async def main():
        with pytest.raises(ValueError, match="bad"):
            await pool.run(int, "bad")
        return await pool.run(sum, [1, 2, 3])

    assert asyncio.run(main()) == 6
    pool.shutdown()
