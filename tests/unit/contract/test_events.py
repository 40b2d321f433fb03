"""The dvs-events/1 format, binning, the digits-dvs generator and NDA augmentation."""

import numpy as np
import pytest
import torch

from training.contract.events.binning import EventBinner, bin_events
from training.contract.events.format import RECORD_BYTES, decode, encode, make_events
from training.data.digits_dvs import BIN_US, SENSOR, generate_stream
from training.data.event_augment import cutout, nda_augment, roll, rotate

EVENTS = make_events(
    [100, 150, 300, 1200, 1250, 5000], [0, 1, 2, 3, 0, 1], [0, 0, 1, 1, 2, 2], [1, 0, 1, 1, 0, 1]
)


def test_records_are_16_little_endian_bytes():
    data = encode(make_events([1], [2], [3], [1]))
    assert len(data) == RECORD_BYTES == 16
    assert (
        data
        == (1).to_bytes(8, "little")
        + (2).to_bytes(2, "little")
        + (3).to_bytes(2, "little")
        + b"\x01\x00\x00\x00"
    )
    assert decode(encode(EVENTS)).tolist() == EVENTS.tolist()
    with pytest.raises(ValueError):
        decode(data[:-1])


def test_bins_are_fixed_durations_from_the_first_event():
    frames = bin_events(EVENTS, 4, 3, 500, 4)
    # t - t0 = 0, 50, 200 -> bin 1; 1100, 1150 -> bin 3; 4900 -> bin 10, past T = 4
    assert frames.shape == (4, 2, 3, 4)
    assert frames.sum(axis=(1, 2, 3)).tolist() == [3, 0, 2, 0]
    assert frames[0, 1, 0, 0] == 1 and frames[0, 0, 0, 1] == 1 and frames[0, 1, 1, 2] == 1
    assert frames[2, 1, 1, 3] == 1 and frames[2, 0, 2, 0] == 1


def test_incremental_binning_completes_a_bin_when_an_event_past_its_end_arrives():
    binner = EventBinner(4, 3, 500, 4)
    assert binner.push(EVENTS[:2]) == []
    completed = binner.push(EVENTS[2:4])  # t=1200 closes bins 1 and 2
    assert [f.sum() for f in completed] == [3, 0]
    assert [f.sum() for f in binner.push(EVENTS[4:])] == [2, 0]  # t=5000 closes bins 3 and 4
    assert binner.done and binner.finish() == []
    short = EventBinner(4, 3, 500, 4)
    short.push(EVENTS[:3])
    assert [f.sum() for f in short.finish()] == [3, 0, 0, 0]  # end: partial bin, then empty ones


def test_generator_is_seeded_and_n_mnist_like():
    digit = np.zeros((8, 8))
    digit[1:7, 3:5] = 16  # a bar
    first, again, other = generate_stream(digit, 7), generate_stream(digit, 7), generate_stream(digit, 8)
    assert first.tobytes() == again.tobytes() and first.tobytes() != other.tobytes()
    assert (np.diff(first["t"]) >= 0).all() and first["t"][-1] < 3 * 100_000
    assert first["x"].max() < SENSOR and first["y"].max() < SENSOR
    assert {0, 1} == set(np.unique(first["p"]).tolist())
    frames = bin_events(first, SENSOR, SENSOR, BIN_US, 4)
    assert (frames.sum(axis=(1, 2, 3)) > 0).all(), "every saccade produces events"


def test_a_blank_digit_makes_no_events():
    assert len(generate_stream(np.zeros((8, 8)), 3)) == 0


def test_nda_augmentations_keep_shape_and_counts_whole():
    frames = torch.zeros(4, 2, 34, 34)
    frames[:, :, 10:20, 12:16] = 1
    generator = torch.Generator().manual_seed(0)
    assert roll(frames, generator, 3).sum() == frames.sum()
    rotated = rotate(frames, generator, 15)
    assert rotated.shape == frames.shape and torch.equal(rotated, rotated.round())
    assert cutout(frames, generator, 8).sum() <= frames.sum()
    for _ in range(5):
        assert nda_augment(frames, generator).shape == frames.shape
