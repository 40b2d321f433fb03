"""Events -> frames of fixed duration, the network's input one timestep at a time.

Timestep k (1-based) holds the events with t - t0 in [(k-1) bin_us, k bin_us), t0 being the
first event's t. A frame is [2, H, W]: event counts per polarity (channel 0 OFF, 1 ON). Bin k
is complete once an event at or past its end arrives, or when the stream ends. Offline
(training, evaluation) and online (the service's streams) binning are this one class, fed all at
once or packet by packet.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class EventBinner:
    """Bins one event stream into frames, fed all at once or packet by packet.

    Args:
        width: the sensor's width in pixels.
        height: the sensor's height in pixels.
        bin_us: the duration of one timestep, in microseconds.
        max_bins: how many frames the model runs; later events are ignored.

    Raises:
        ValueError: ``bin_us`` or ``max_bins`` is not positive.
    """

    def __init__(self, width: int, height: int, bin_us: int, max_bins: int) -> None:
        if bin_us <= 0 or max_bins <= 0:
            raise ValueError("bin_us and max_bins must be positive")
        self.width, self.height, self.bin_us, self.max_bins = width, height, bin_us, max_bins
        self.t0: int | None = None
        self.current = 0  # 0-based index of the bin being filled
        self.frame = self._blank()
        self.emitted = 0  # complete frames handed out
        self.events_seen = 0
        self.last_t: int | None = None

    def _blank(self) -> npt.NDArray[np.float32]:
        return np.zeros((2, self.height, self.width), dtype=np.float32)

    @property
    def done(self) -> bool:
        """Every bin the model will run has been handed out."""
        return self.emitted >= self.max_bins

    def push(self, events: np.ndarray) -> list[npt.NDArray[np.float32]]:
        """Add events and hand out the frames they complete.

        Args:
            events: records with t, x, y, p; t never decreasing, also across calls, and the
                coordinates already inside the sensor.

        Returns:
            The completed frames [2, H, W], in order; none once ``done``.
        """
        if len(events) == 0 or self.done:
            return []
        t = events["t"].astype(np.int64)
        if self.t0 is None:
            self.t0 = int(t[0])
        self.events_seen += len(events)
        self.last_t = int(t[-1])
        bins = (t - self.t0) // self.bin_us
        completed = []
        start = 0
        while start < len(events) and not self.done:
            # events of the current bin run up to the first one at or past its end
            end = start + int(np.searchsorted(bins[start:], self.current, side="right"))
            self._add(events[start:end])
            if end == len(events):
                break
            completed.append(self._close())
            start = end
        return completed

    def finish(self) -> list[npt.NDArray[np.float32]]:
        """End the stream: the partial bin completes, and the bins up to ``max_bins`` follow
        empty (the network may still decide on them).

        Returns:
            The remaining frames [2, H, W], in order.
        """
        frames = []
        while not self.done:
            frames.append(self._close())
        return frames

    def _add(self, events: np.ndarray) -> None:
        if len(events):
            # One bincount over flat (polarity, row, column) cells: a single vectorised pass,
            # where np.add.at updates one element at a time.
            cells = (
                events["p"].astype(np.intp) * self.height + events["y"].astype(np.intp)
            ) * self.width + events["x"].astype(np.intp)
            self.frame += (
                np.bincount(cells, minlength=self.frame.size).reshape(self.frame.shape).astype(np.float32)
            )

    def _close(self) -> npt.NDArray[np.float32]:
        frame, self.frame = self.frame, self._blank()
        self.current += 1
        self.emitted += 1
        return frame


def bin_events(
    events: np.ndarray, width: int, height: int, bin_us: int, bins: int
) -> npt.NDArray[np.float32]:
    """All the frames of a whole recording.

    Args:
        events: the recording's records, t never decreasing.
        width: the sensor's width in pixels.
        height: the sensor's height in pixels.
        bin_us: the duration of one timestep, in microseconds.
        bins: how many frames to make.

    Returns:
        float32 [bins, 2, H, W]: event counts per timestep, polarity and pixel.
    """
    binner = EventBinner(width, height, bin_us, bins)
    frames = binner.push(events) + binner.finish()
    return np.stack(frames)
