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
from typing import Any, TypeVar

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
    """What one stream session may take.

    Attributes:
        max_events: events in the whole stream.
        max_duration_us: event time, first to last event.
        idle_timeout_s: the longest wait for the next whole packet.
        max_message_bytes: one WebSocket message or NDJSON line.
        max_seconds: wall-clock time, from admission.
    """

    max_events: int
    max_duration_us: int
    idle_timeout_s: float
    max_message_bytes: int
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamLimits:
        """The limits that ``settings`` give every stream.

        Args:
            settings: the service's settings (``stream_*``).

        Returns:
            The limits.
        """
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

    Args:
        limits: the session's limits.

    Yields:
        The deadline on the event loop's clock, for waits to cut short themselves
        (``next_within``): Python 3.11's ``wait_for`` can swallow the cancellation that
        ``asyncio.timeout`` sends when its wait ends at the same moment.

    Raises:
        StreamTimedOut: the session outlived ``max_seconds``.
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
    """The bytes one stream session may send on the wire, PACKET_OVERHEAD_BYTES per packet included.

    Attributes:
        limit: the most bytes.
        used: the bytes charged so far.
    """

    limit: int
    used: int = 0

    def charge(self, size: int) -> None:
        """Charge one packet.

        Args:
            size: the packet's bytes on the wire.

        Raises:
            InputTooLarge: the session has sent more than ``limit``.
        """
        self.used += size + PACKET_OVERHEAD_BYTES
        if self.used > self.limit:
            raise InputTooLarge(
                f"more than {self.limit} bytes in one stream (each packet "
                f"counted with {PACKET_OVERHEAD_BYTES} more)",
                "stream_too_large",
            )


def parse_header(message: str | bytes | dict[str, Any]) -> tuple[int, int]:
    """The sensor size of a ``{"format": "dvs-events/1", "width", "height"}`` header.

    Args:
        message: the header as JSON text, or already parsed.

    Returns:
        The sensor's (width, height).

    Raises:
        InvalidInput: not such a header, or a size out of range.
    """
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
    """A sensor size as given, checked.

    Args:
        width: the width, from a header or a query.
        height: the height.

    Returns:
        (width, height).

    Raises:
        InvalidInput: either is not an integer from 1 to MAX_SENSOR_SIDE.
    """
    return _sensor_side("width", width), _sensor_side("height", height)


def _sensor_side(name: str, value: object) -> int:
    """``value`` if it is an integer from 1 to MAX_SENSOR_SIDE (``InvalidInput`` if not)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SENSOR_SIDE:
        raise InvalidInput(f"sensor {name} must be an integer from 1 to {MAX_SENSOR_SIDE}", "bad_header")
    return value


def parse_json_packet(packet: object) -> np.ndarray:
    """Records from a debugging packet ``{"t": [...], "x": [...], "y": [...], "p": [...]}``.

    Args:
        packet: the parsed JSON.

    Returns:
        The events, as ``dvs-events/1`` records.

    Raises:
        InvalidInput: not such a packet, or values out of range.
    """
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
    """Records from 16-byte ``dvs-events/1`` records.

    Args:
        data: whole records.

    Returns:
        The events.

    Raises:
        InvalidInput: the data does not hold whole, valid records.
    """
    try:
        return decode(data)
    except ValueError as error:
        raise InvalidInput(str(error), "partial_record") from None


class StreamSession:
    """One stream's events, binned and run one timestep per completed bin until the decision."""

    def __init__(self, model: LoadedModel, width: int, height: int, limits: StreamLimits) -> None:
        """A session at rest, nothing received yet.

        Args:
            model: the event model version that classifies the stream.
            width: the client's sensor width; events are scaled to the model's sensor.
            height: the client's sensor height.
            limits: the session's limits.
        """
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
        """Add a packet, and run the bins it completes.

        Args:
            events: the packet's events, in time order.

        Returns:
            The outcome if the stream has decided, else None.

        Raises:
            InvalidInput: events out of order, off the sensor or malformed.
            InputTooLarge: more events, or a longer stream, than the limits allow.
        """
        if self.outcome is not None or len(events) == 0:
            return self.outcome
        self._validate(events)
        self.events_received += len(events)
        if self.events_received > self.limits.max_events:
            raise InputTooLarge(f"more than {self.limits.max_events} events in one stream", "stream_too_long")
        return self._run(self.binner.push(self._to_model_sensor(events)))

    def end(self) -> Outcome:
        """The stream ended: the partial bin runs, then empty bins up to T if still undecided.

        Returns:
            The outcome.
        """
        outcome = self.outcome if self.outcome is not None else self._run(self.binner.finish())
        if outcome is None:  # the bins up to T always end in a decision
            raise RuntimeError("the stream ran to T without a decision")
        return outcome

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
        """Step the network once per frame until it decides."""
        runtime = self.model.runtime
        for frame in frames:
            self.events_used += int(frame.sum())
            batch = Batch(runtime.encode(frame[None]), self.state, self.rows)
            remaining, done = advance(runtime, batch, self.model.decoding)
            if remaining is None:  # its one row finished
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
        """A stream whose header has not come yet.

        Args:
            service: the app's state.
            loaded: the event model version the stream is for.
            limits: the session's limits.
        """
        self.service, self.loaded, self.limits = service, loaded, limits
        self.session: StreamSession | None = None
        self.budget = ByteBudget(service.settings.stream_max_bytes)
        self.events = service.metrics.stream_events.labels(loaded.name, str(loaded.version))

    def start(self, width: int, height: int) -> StreamSession:
        """Begin the stream once its header has come.

        Args:
            width: the client's sensor width.
            height: the client's sensor height.

        Returns:
            The session.
        """
        self.session = StreamSession(self.loaded, width, height, self.limits)
        return self.session

    def charge(self, size: int) -> None:
        """Count bytes received against the session's budget.

        Args:
            size: the bytes of a message or body chunk.

        Raises:
            InputTooLarge: the session has sent more than ``stream_max_bytes``.
        """
        self.budget.charge(size)

    async def feed(self, events: np.ndarray) -> Outcome | None:
        """Run a packet on a pool thread.

        Args:
            events: the packet's events.

        Returns:
            The outcome if the stream has decided, else None.
        """
        self.events.inc(len(events))
        return await self.service.pool.run(self._started().feed, events)

    async def end(self) -> Outcome:
        """The stream ended: run it to its decision on a pool thread.

        Returns:
            The outcome.
        """
        return await self.service.pool.run(self._started().end)

    def _started(self) -> StreamSession:
        if self.session is None:
            raise InvalidInput("events came before the stream's header", "bad_header")
        return self.session
