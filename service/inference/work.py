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
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


class DeadlineExceeded(Exception):
    """The request's time is up: the work stops where it checked."""


@dataclass(frozen=True)
class Deadline:
    """When a request's time is up.

    Attributes:
        at: the moment, on ``time.monotonic()``'s clock.
        seconds: the budget it was made with, for messages.
    """

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now.

        Args:
            seconds: the budget.

        Returns:
            The deadline.
        """
        return cls(time.monotonic() + seconds, seconds)

    def remaining(self) -> float:
        """Seconds left (negative once past)."""
        return self.at - time.monotonic()

    def check(self) -> None:
        """Raise ``DeadlineExceeded`` if the time is up.

        Raises:
            DeadlineExceeded: the deadline has passed.
        """
        if time.monotonic() >= self.at:
            raise DeadlineExceeded(f"no decision within {self.seconds:g} s")


class WorkPool:
    """A fixed number of threads for one app's CPU work."""

    def __init__(self, threads: int, name: str = "work") -> None:
        """Start no thread yet: they start as work comes.

        Args:
            threads: the most threads, so the most pieces of work running at once.
            name: the threads' name prefix.
        """
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(*args, **kwargs)`` on a pool thread. If the caller is cancelled meanwhile,
        work not yet started never starts, and work already running is waited for (it stops at
        its next deadline check) before the cancellation goes on.

        Args:
            function: the work.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            What ``function`` returned.
        """
        future = self._executor.submit(function, *args, **kwargs)
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
        """Cancel the work not yet started and let the threads end; running work is not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)
