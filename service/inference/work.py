"""CPU work off the event loop, bounded in threads and in time.

Decoding an image, or running a request without the batcher, takes a thread from one fixed
``WorkPool`` per app: its size bounds how many decoded images exist at once, whatever the number
of requests waiting. A request's ``Deadline`` travels with its work, which checks it between
steps (OIP rows, preprocessing stages, timesteps), so a timeout stops the work, not only the
answer. And a caller that gives up (a timeout cancels it) does not walk away from a running
thread: its cancellation completes when the thread has finished, so that whatever the caller
holds, a concurrency slot above all, is held for exactly as long as the work runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """The request's time is up: the work stops where it checked."""


@dataclass(frozen=True)
class Deadline:
    at: float  # time.monotonic()
    seconds: float  # the budget it was made with, for messages

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if time.monotonic() >= self.at:
            raise DeadlineExceeded(f"no decision within {self.seconds:g} s")


class WorkPool:
    def __init__(self, threads: int, name: str = "work") -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, function: Callable[..., T], *args) -> T:
        """``function(*args)`` on a pool thread. If the caller is cancelled meanwhile, work not
        yet started never starts, and work already running is waited for (it stops at its next
        deadline check) before the cancellation goes on."""
        future = self._executor.submit(function, *args)
        waiter = asyncio.wrap_future(future)
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not future.cancel():
                await asyncio.wait([waiter])
                if not waiter.cancelled():
                    waiter.exception()  # retrieved: nobody is left to want it
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
