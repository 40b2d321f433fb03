"""One DVS event stream being classified: validation, binning and early-exit stepping.

A session turns ``dvs-events/1`` packets into frames with the training package's own binner and
runs the network one timestep per completed bin, with the same decision rule and accounting as
images (``early_exit.advance``). It stops at the first output spike: the rest of the stream is
not needed. No I/O here; the routes feed it and send what it returns.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from service.inference.early_exit import Batch, Outcome, RowRecords, advance
from service.inference.errors import InputTooLarge, InvalidInput, StreamTimedOut
from service.inference.registry import LoadedModel
from service.inference.state import ServiceState
from service.settings import Settings
from training.contract.events.binning import EventBinner
from training.contract.events.format import FORMAT, decode, make_events

T = TypeVar("T")
MAX_SENSOR_SIDE = 4096
# Each packet is charged this many bytes on top of its own against a session's byte budget: what
# handling any packet costs, so that a stream of empty or tiny packets spends the budget too.
PACKET_OVERHEAD_BYTES = 256


@dataclass(frozen=True)
class StreamLimits:
    max_events: int
    max_duration_us: int  # event time, first to last event
    idle_timeout_s: float  # longest wait for the next whole packet
    max_message_bytes: int
    max_seconds: float  # wall clock, from admission

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamLimits:
        """The limits that ``settings`` give every stream."""
        return cls(
            settings.stream_max_events,
            int(settings.stream_max_duration_s * 1e6),
            settings.stream_idle_timeout_s,
            settings.stream_max_message_bytes,
            settings.stream_max_seconds,
        )


@asynccontextmanager
async def wall_clock(limits: StreamLimits) -> AsyncIterator[float]:
    """The session's whole life within ``max_seconds``, however its packets trickle in.

    Yields:
        The deadline on the event loop's clock, for waits to cut short themselves
        (``next_within``): Python 3.11's ``wait_for`` can swallow the cancellation that
        ``asyncio.timeout`` sends when its wait ends at the same moment.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(limits.max_seconds):
            yield loop.time() + limits.max_seconds
    except TimeoutError:
        raise StreamTimedOut(f"the stream lasted longer than {limits.max_seconds:g} s") from None


async def next_within(awaitable: Awaitable[T], idle_timeout_s: float, deadline: float, what: str) -> T:
    """``awaitable``'s result within the idle timeout and before the session's deadline.

    Args:
        awaitable: the wait for the next message or packet.
        idle_timeout_s: the longest wait for it.
        deadline: the session's end on the event loop's clock (``wall_clock``).
        what: what is waited for, for the idle timeout's message.

    Returns:
        The result.

    Raises:
        StreamTimedOut: ``idle_timeout`` or ``stream_timeout``, whichever comes first.
    """
    left = deadline - asyncio.get_running_loop().time()
    try:
        return await asyncio.wait_for(awaitable, max(0.0, min(idle_timeout_s, left)))
    except asyncio.TimeoutError:
        if left <= idle_timeout_s:
            raise StreamTimedOut("the stream lasted longer than its wall-clock limit") from None
        raise StreamTimedOut(f"no {what} for {idle_timeout_s:g} s", "idle_timeout") from None


@dataclass
class ByteBudget:
    """The bytes one stream session may send on the wire, PACKET_OVERHEAD_BYTES per packet included."""

    limit: int
    used: int = 0

    def charge(self, size: int) -> None:
        self.used += size + PACKET_OVERHEAD_BYTES
        if self.used > self.limit:
            raise InputTooLarge(
                f"more than {self.limit} bytes in one stream (each packet "
                f"counted with {PACKET_OVERHEAD_BYTES} more)",
                "stream_too_large",
            )


def parse_header(message: str | bytes | dict) -> tuple[int, int]:
    """The sensor (width, height) of a ``{"format": "dvs-events/1", "width", "height"}`` header."""
    try:
        header = message if isinstance(message, dict) else json.loads(message)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, RecursionError):
        raise InvalidInput(
            'the first message must be a JSON header {"format": "dvs-events/1", "width": W, "height": H}',
            "bad_header",
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidInput(f"the header must name the format {FORMAT!r}", "bad_header")
    return sensor_size(header.get("width"), header.get("height"))


def sensor_size(width: object, height: object) -> tuple[int, int]:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SENSOR_SIDE:
            raise InvalidInput(f"sensor {name} must be an integer from 1 to {MAX_SENSOR_SIDE}", "bad_header")
    return width, height


def parse_json_packet(packet: object) -> np.ndarray:
    """Records from a debugging packet ``{"t": [...], "x": [...], "y": [...], "p": [...]}``."""
    if not isinstance(packet, dict) or not all(key in packet for key in "txyp"):
        raise InvalidInput('a JSON packet needs "t", "x", "y" and "p" lists', "bad_packet")
    try:
        columns = [np.asarray(packet[key], dtype=np.int64) for key in "txyp"]
        if any(column.ndim != 1 for column in columns):
            raise ValueError("not flat lists")
        coordinates = np.concatenate(columns[1:3])
        if (
            (coordinates < 0).any()
            or (coordinates > MAX_SENSOR_SIDE).any()
            or not np.isin(columns[3], (0, 1)).all()
        ):
            raise InvalidInput(f"x and y must be from 0 to {MAX_SENSOR_SIDE} and p 0 or 1", "bad_packet")
        return make_events(*columns)
    except (TypeError, ValueError, OverflowError) as error:
        raise InvalidInput(f"bad JSON packet ({error})", "bad_packet") from None


def parse_binary_packet(data: bytes) -> np.ndarray:
    try:
        return decode(data)
    except ValueError as error:
        raise InvalidInput(str(error), "partial_record") from None


class StreamSession:
    def __init__(self, model: LoadedModel, width: int, height: int, limits: StreamLimits) -> None:
        sensor = model.manifest.event_input
        self.model = model
        self.width, self.height = width, height
        self.model_width, self.model_height = sensor.sensor_width, sensor.sensor_height
        self.limits = limits
        self.binner = EventBinner(self.model_width, self.model_height, sensor.bin_us, model.runtime.timesteps)
        self.state = model.runtime.initial_state(1)
        self.rows = RowRecords.fresh(
            np.zeros(1, np.int64), np.ones(1, bool), model.widths, model.runtime.timesteps
        )
        self.outcome: Outcome | None = None
        self.events_received = 0
        self.events_used = 0  # events in the bins the network ran before deciding
        self.last_t: int | None = None
        self.decided_at: float | None = None  # perf_counter when decided

    def feed(self, events: np.ndarray) -> Outcome | None:
        """Add a packet; returns the outcome if it completed the deciding bin."""
        if self.outcome is not None or len(events) == 0:
            return self.outcome
        self._validate(events)
        self.events_received += len(events)
        if self.events_received > self.limits.max_events:
            raise InputTooLarge(f"more than {self.limits.max_events} events in one stream", "stream_too_long")
        return self._run(self.binner.push(self._to_model_sensor(events)))

    def end(self) -> Outcome:
        """The stream ended: the partial bin runs, then empty bins up to T if still undecided."""
        if self.outcome is None:
            self._run(self.binner.finish())
        return self.outcome

    def _validate(self, events: np.ndarray) -> None:
        t = events["t"]
        # Compared, not subtracted: a difference of int64 timestamps can wrap around.
        if (t[1:] < t[:-1]).any() or (self.last_t is not None and t[0] < self.last_t):
            raise InvalidInput("event timestamps must never decrease", "decreasing_timestamps")
        if int(events["x"].max()) >= self.width or int(events["y"].max()) >= self.height:
            raise InvalidInput(
                f"an event lies outside the declared {self.width}x{self.height} sensor", "out_of_sensor"
            )
        if (events["p"] > 1).any():
            raise InvalidInput("polarity must be 0 (OFF) or 1 (ON)", "bad_packet")
        first = self.binner.t0 if self.binner.t0 is not None else int(t[0])
        if int(t[-1]) - first > self.limits.max_duration_us:
            raise InputTooLarge(f"stream longer than {self.limits.max_duration_us} us", "stream_too_long")
        self.last_t = int(t[-1])

    def _to_model_sensor(self, events: np.ndarray) -> np.ndarray:
        if (self.width, self.height) == (self.model_width, self.model_height):
            return events
        scaled = events.copy()
        scaled["x"] = (events["x"].astype(np.int64) * self.model_width // self.width).astype(np.uint16)
        scaled["y"] = (events["y"].astype(np.int64) * self.model_height // self.height).astype(np.uint16)
        return scaled

    def _run(self, frames: list[np.ndarray]) -> Outcome | None:
        runtime = self.model.runtime
        for frame in frames:
            self.events_used += int(frame.sum())
            batch = Batch(runtime.encode(frame[None]), self.state, self.rows)
            remaining, done = advance(runtime, batch, self.model.decoding)
            if done:
                self.outcome = done[0][1]
                self.decided_at = time.perf_counter()
                return self.outcome
            self.state, self.rows = remaining.state, remaining.rows
        return None


class LiveStream:
    """A stream session as the routes drive it, between taking its slot and its answer: every
    message or body chunk, the header's too, charged against the session's bytes; the session
    started at the header; packets run through the work pool."""

    def __init__(self, service: ServiceState, loaded: LoadedModel, limits: StreamLimits) -> None:
        self.service, self.loaded, self.limits = service, loaded, limits
        self.session: StreamSession | None = None
        self.budget = ByteBudget(service.settings.stream_max_bytes)
        self.events = service.metrics.stream_events.labels(loaded.name, str(loaded.version))

    def start(self, width: int, height: int) -> StreamSession:
        """Begin the stream of a ``width`` x ``height`` sensor."""
        self.session = StreamSession(self.loaded, width, height, self.limits)
        return self.session

    def charge(self, size: int) -> None:
        """Count ``size`` bytes received against the session's budget."""
        self.budget.charge(size)

    async def feed(self, events: np.ndarray) -> Outcome | None:
        """Run a packet; the outcome if it decided."""
        self.events.inc(len(events))
        return await self.service.pool.run(self._started().feed, events)

    async def end(self) -> Outcome:
        """The stream ended: run it to its decision."""
        return await self.service.pool.run(self._started().end)

    def _started(self) -> StreamSession:
        if self.session is None:
            raise InvalidInput("events came before the stream's header", "bad_header")
        return self.session
