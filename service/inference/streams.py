"""One DVS event stream being classified: validation, binning and early-exit stepping.

A session turns ``dvs-events/1`` packets into frames with the training package's own binner and
runs the network one timestep per completed bin, with the same decision rule and accounting as
images (``early_exit.advance``). It stops at the first output spike: the rest of the stream is
not needed. No I/O here; the routes feed it and send what it returns.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np

from service.inference.early_exit import Batch, Outcome, Rows, advance
from service.inference.registry import LoadedModel
from training.contract.events.binning import EventBinner
from training.contract.events.format import FORMAT, decode, make_events

MAX_SENSOR_SIDE = 4096
# Each packet is charged this many bytes on top of its own against a session's byte budget: what
# handling any packet costs, so that a stream of empty or tiny packets spends the budget too.
PACKET_OVERHEAD_BYTES = 256


class StreamError(Exception):
    """A typed stream error: sent as ``{"type": "error", "error", "code"}`` (or a 4xx)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class StreamLimits:
    max_events: int
    max_duration_us: int  # event time, first to last event
    idle_timeout_s: float  # longest wait for the next whole packet
    max_message_bytes: int
    max_seconds: float  # wall clock, from admission


@dataclass
class ByteBudget:
    """The bytes one stream session may send on the wire, PACKET_OVERHEAD_BYTES per packet included."""

    limit: int
    used: int = 0

    def charge(self, size: int) -> None:
        self.used += size + PACKET_OVERHEAD_BYTES
        if self.used > self.limit:
            raise StreamError("stream_too_large", f"more than {self.limit} bytes in one stream (each packet "
                                                  f"counted with {PACKET_OVERHEAD_BYTES} more)", 413)


def parse_header(message: str | bytes | dict) -> tuple[int, int]:
    """The sensor (width, height) of a ``{"format": "dvs-events/1", "width", "height"}`` header."""
    try:
        header = message if isinstance(message, dict) else json.loads(message)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, RecursionError):
        raise StreamError("bad_header", "the first message must be a JSON header "
                                        '{"format": "dvs-events/1", "width": W, "height": H}') from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StreamError("bad_header", f"the header must name the format {FORMAT!r}")
    return sensor_size(header.get("width"), header.get("height"))


def sensor_size(width: object, height: object) -> tuple[int, int]:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SENSOR_SIDE:
            raise StreamError("bad_header", f"sensor {name} must be an integer from 1 to {MAX_SENSOR_SIDE}")
    return width, height


def parse_json_packet(packet: object) -> np.ndarray:
    """Records from a debugging packet ``{"t": [...], "x": [...], "y": [...], "p": [...]}``."""
    if not isinstance(packet, dict) or not all(key in packet for key in "txyp"):
        raise StreamError("bad_packet", 'a JSON packet needs "t", "x", "y" and "p" lists')
    try:
        columns = [np.asarray(packet[key], dtype=np.int64) for key in "txyp"]
        if any(column.ndim != 1 for column in columns):
            raise ValueError("not flat lists")
        coordinates = np.concatenate(columns[1:3])
        if (coordinates < 0).any() or (coordinates > MAX_SENSOR_SIDE).any() or not np.isin(columns[3], (0, 1)).all():
            raise StreamError("bad_packet", f"x and y must be from 0 to {MAX_SENSOR_SIDE} and p 0 or 1")
        return make_events(*columns)
    except (TypeError, ValueError, OverflowError) as error:
        raise StreamError("bad_packet", f"bad JSON packet ({error})") from None


def parse_binary_packet(data: bytes) -> np.ndarray:
    try:
        return decode(data)
    except ValueError as error:
        raise StreamError("partial_record", str(error)) from None


class StreamSession:
    def __init__(self, model: LoadedModel, width: int, height: int, limits: StreamLimits) -> None:
        spec = model.manifest["input"]
        self.model = model
        self.width, self.height = width, height
        self.model_width, self.model_height = spec["sensor_width"], spec["sensor_height"]
        self.limits = limits
        self.binner = EventBinner(self.model_width, self.model_height, spec["bin_us"], model.runtime.timesteps)
        self.state = model.runtime.initial_state(1)
        self.rows = Rows.fresh(np.zeros(1, np.int64), np.ones(1, bool), model.widths,
                               model.runtime.timesteps)
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
            raise StreamError("stream_too_long", f"more than {self.limits.max_events} events in one stream", 413)
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
            raise StreamError("decreasing_timestamps", "event timestamps must never decrease")
        if int(events["x"].max()) >= self.width or int(events["y"].max()) >= self.height:
            raise StreamError("out_of_sensor", f"an event lies outside the declared {self.width}x{self.height} sensor")
        if (events["p"] > 1).any():
            raise StreamError("bad_packet", "polarity must be 0 (OFF) or 1 (ON)")
        first = self.binner.t0 if self.binner.t0 is not None else int(t[0])
        if int(t[-1]) - first > self.limits.max_duration_us:
            raise StreamError("stream_too_long", f"stream longer than {self.limits.max_duration_us} us", 413)
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

