"""Per-timestep dynamic batching for one model version.

Concurrent requests step together: a request waiting when a timestep finishes joins the batch
at the next timestep (each row keeps its own timestep and state), and a row leaves the batch the
moment it decides, so no work is spent on decided samples. Rows never interact, so an answer
never depends on who else was in the batch.

The batch lives in one worker thread; the event loop only queues requests and hands back
outcomes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from service.inference.early_exit import Batch, Outcome, Widths, advance, join, start
from service.inference.errors import Draining, Overloaded
from service.inference.runtimes.base import Runtime

# One queued request: (ticket, preprocessed image [C, H, W], whether it may exit early).
Arrival = tuple[int, np.ndarray, bool]


class QueueFull(Overloaded):
    """The batcher's queue is at its bound: the caller sheds the request."""


class BatcherClosed(Draining):
    """The batcher has stopped (the server is shutting down): nothing more is stepped."""


class Batcher:
    """The dynamic batcher of one model version: a queue, and one thread stepping the batch."""

    def __init__(
        self,
        runtime: Runtime,
        widths: Widths,
        decoding: str,
        max_batch_size: int,
        max_delay_seconds: float = 0.0,
        on_step: Callable[[int], None] | None = None,
        name: str = "model",
        max_queue: int = 256,
    ) -> None:
        """A batcher that starts its task and thread with the first request.

        Args:
            runtime: the version's runtime.
            widths: the model's record sizes.
            decoding: ``first_spike``, or ``time_mean`` for rate-coded models and ANNs.
            max_batch_size: the most rows stepped together.
            max_delay_seconds: when idle, how long the first request waits for company.
            on_step: called with the rows of each runtime timestep.
            name: names the thread (``batcher-<name>``) and the version in messages.
            max_queue: the most requests waiting; more are refused with ``QueueFull``.
        """
        self.runtime = runtime
        self.widths = widths
        self.decoding = decoding
        self.max_batch_size = max_batch_size
        self.max_delay_seconds = max_delay_seconds
        self.on_step = on_step
        self.max_queue = max_queue
        self.name = name
        self._queue: asyncio.Queue[Arrival] | None = None
        self._futures: dict[int, asyncio.Future[Outcome]] = {}
        self._tickets = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batcher-{name}")
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def pending(self) -> int:
        """Requests queued or in the batch."""
        return len(self._futures)

    async def submit(self, image: np.ndarray, early_exit: bool = True) -> Outcome:
        """Classify one preprocessed image with the rows stepping now.

        Args:
            image: float32 [C, H, W].
            early_exit: stop at the decision; False runs all T timesteps.

        Returns:
            The image's outcome, the same as it would get alone.

        Raises:
            QueueFull: ``max_queue`` requests are already waiting.
            BatcherClosed: the batcher has stopped.
        """
        if self.closed:
            raise BatcherClosed(f"the batcher of {self.name} has stopped")
        queue = self._queue
        if queue is not None and queue.qsize() >= self.max_queue:
            raise QueueFull(f"{queue.qsize()} requests already waiting")
        if queue is None:  # the first request: the queue and the task start together
            queue = self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(queue))
        ticket = next(self._tickets)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._futures[ticket] = future
        queue.put_nowait((ticket, image, early_exit))
        try:
            return await future
        finally:
            self._futures.pop(ticket, None)

    def stop(self) -> None:
        """Stop at once (on the event loop's thread): requests still waiting get ``BatcherClosed``
        and later ones are refused with it. Its model's ``LoadedModel.retire`` calls this only
        once no request uses the version any more."""
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        for future in self._futures.values():
            if not future.done():
                future.set_exception(BatcherClosed(f"the batcher of {self.name} has stopped"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """``stop``, then wait for the task to end."""
        self.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, queue: asyncio.Queue[Arrival]) -> None:
        """Step the batch for as long as the batcher runs, taking in arrivals between timesteps."""
        loop = asyncio.get_running_loop()
        batch: Batch | None = None
        while True:
            # A request that gave up (its timeout) while queued is not started.
            arrivals = [
                a
                for a in await self._arrivals(queue, 0 if batch is None else len(batch))
                if a[0] in self._futures
            ]
            try:
                if arrivals:
                    tickets = np.array([a[0] for a in arrivals])
                    images = np.stack([a[1] for a in arrivals])
                    early = np.array([a[2] for a in arrivals])
                    # Alone, new rows run timestep 1 in one fused call; joining a running batch,
                    # they wait to step with it.
                    newcomer = await loop.run_in_executor(
                        self._executor,
                        start,
                        self.runtime,
                        images,
                        tickets,
                        early,
                        self.widths,
                        batch is None,
                    )
                    batch = join(self.runtime, batch, newcomer)
                if batch is None:  # nothing running and nothing arrived
                    continue
                if self.on_step is not None:
                    self.on_step(len(batch))
                batch, done = await loop.run_in_executor(
                    self._executor, advance, self.runtime, batch, self.decoding
                )
            except Exception as error:  # a runtime failure fails the requests in flight, not the batcher
                failed = [a[0] for a in arrivals] + ([] if batch is None else batch.rows.ticket.tolist())
                for ticket in failed:
                    future = self._futures.get(int(ticket))
                    if future is not None and not future.done():
                        future.set_exception(error)
                batch = None
                continue
            for ticket, outcome in done:
                future = self._futures.get(ticket)
                if future is not None and not future.done():
                    future.set_result(outcome)

    async def _arrivals(self, queue: asyncio.Queue[Arrival], running: int) -> list[Arrival]:
        """Requests to add now: whatever is queued, up to capacity. When idle, wait for the first
        one, then up to the batch delay for company."""
        room = self.max_batch_size - running
        arrivals: list[Arrival] = []
        if running == 0:
            arrivals.append(await queue.get())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.max_delay_seconds
            while len(arrivals) < room and (remaining := deadline - loop.time()) > 0:
                try:
                    arrivals.append(await asyncio.wait_for(queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
        while len(arrivals) < room and not queue.empty():
            arrivals.append(queue.get_nowait())
        return arrivals
