"""The digits-dvs generator: the nominal camera's streams stay bit for bit what they were, camera
parameters and their declared ranges, and the ``other-cameras`` split."""

import hashlib
from dataclasses import replace

import numpy as np
import pytest
import torch

from training.contract.events.format import RECORD, decode, encode
from training.data import load_dataset
from training.data.digits import digits_split
from training.data.digits_dvs import (
    NOMINAL,
    OTHER_CAMERAS_OUTSIDE,
    OTHER_CAMERAS_RANGES,
    PATHS,
    SENSOR,
    TRAIN_RANGES,
    CameraParams,
    CameraRanges,
    TrainSettings,
    digits_dvs_split,
    generate_stream,
    generate_streams,
    sample_camera,
    split_plan,
    stream_frames,
)
from training.data.event_augment import drop_events

# The streams since the log-intensity is computed by IEEE-exact operations (the same bits on every
# CPU); numpy's log gave 12,767 events here and another test split where it used AVX-512.
FIRST_TEST_STREAM = (12769, "f72fde4941a966e1d9e05aac8844434afff06c88ca0f7f4c50ad28b717d88852")
TEST_SPLIT_SHA256 = "15ac8d374b0f18ae7a10a5135e895e3c00bce0039850502397a30422fc979b28"


@pytest.fixture(scope="module")
def test_digits():
    return digits_split("test")[0]


def _sha256(*streams: np.ndarray) -> str:
    return hashlib.sha256(b"".join(s.tobytes() for s in streams)).hexdigest()


def test_nominal_camera_reproduces_the_original_streams(test_digits):
    first = generate_stream(test_digits[0], 0)
    assert (len(first), _sha256(first)) == FIRST_TEST_STREAM
    assert _sha256(generate_stream(test_digits[0], 0, NOMINAL)) == FIRST_TEST_STREAM[1]


@pytest.mark.slow
def test_the_test_split_is_unchanged():
    streams, labels = digits_dvs_split("test")
    assert len(streams) == len(labels) == 360
    assert _sha256(*streams) == TEST_SPLIT_SHA256


def test_nominal_camera_lies_inside_the_training_ranges():
    for name in ("path", *CameraRanges.numeric_fields()):
        # NOMINAL has no hot pixels, so their rate (0) does not matter
        assert TRAIN_RANGES.covers(name, NOMINAL) or name == "hot_pixel_hz", name


def _draws(ranges: CameraRanges, count: int = 400) -> list[CameraParams]:
    rng = np.random.default_rng(11)
    return [sample_camera(rng, ranges) for _ in range(count)]


def test_sampled_cameras_stay_inside_their_ranges_and_vary():
    for ranges in (TRAIN_RANGES, OTHER_CAMERAS_RANGES):
        cameras = _draws(ranges)
        for name in ("path", *CameraRanges.numeric_fields()):
            assert all(ranges.covers(name, c) for c in cameras), name
        assert {c.path for c in cameras} == {PATHS[p] for p in ranges.paths}
        for name in ("amplitude", "contrast", "noise_hz", "digit_size", "duration_ms"):
            assert len({getattr(c, name) for c in cameras}) >= 5, name
    sizes = {c.digit_size for c in _draws(TRAIN_RANGES)}
    assert sizes == set(range(20, 31))


def test_other_cameras_lie_outside_the_training_ranges():
    assert {"path", "amplitude", "contrast", "noise_hz", "digit_size"} <= set(OTHER_CAMERAS_OUTSIDE)
    _, _, cameras = split_plan("other-cameras")
    assert len(cameras) == 360
    for camera in _draws(OTHER_CAMERAS_RANGES) + cameras:
        for name in OTHER_CAMERAS_OUTSIDE:
            assert not TRAIN_RANGES.covers(name, camera), (name, camera)
    assert {c.path for c in cameras} == {PATHS["circle"], PATHS["zigzag"]}


def test_splits_are_deterministic_and_train_variants_are_per_digit():
    assert split_plan("other-cameras") == split_plan("other-cameras")
    settings = TrainSettings.from_dict({"variants": 2})
    samples, seeds, cameras = split_plan("train", settings)
    assert len(samples) == 1437 * 3 and samples[:3] == [1, 1, 1]
    assert cameras[0] == NOMINAL and seeds[0] == 1 and cameras[1] != cameras[2]
    assert split_plan("train", settings)[2] == cameras
    only_variants = TrainSettings.from_dict({"variants": 1, "nominal": False})
    assert NOMINAL not in split_plan("train", only_variants)[2][:50]
    narrow = TrainSettings.from_dict({"variants": 1, "ranges": {"paths": ["square"], "noise_hz": [[1, 2]]}})
    assert narrow.ranges.paths == ("square",) and narrow.ranges.noise_hz == ((1.0, 2.0),)
    thinned = TrainSettings.from_dict({"variants": 1, "event_drop_p": 0.5, "event_keep": [0.3, 0.9]})
    assert (thinned.event_drop_p, thinned.event_keep) == (0.5, (0.3, 0.9))
    with pytest.raises(ValueError, match="unknown digits-dvs augmentation"):
        TrainSettings.from_dict({"variant": 3})
    with pytest.raises(ValueError, match="unknown camera ranges"):
        TrainSettings.from_dict({"ranges": {"threshold": [[0.1, 0.2]]}})


def test_unknown_split_lists_all_three():
    with pytest.raises(ValueError, match="'train', 'test', 'other-cameras'"):
        load_dataset("digits-dvs", "validation")


def test_same_seed_same_stream_and_batches_equal_single_streams(test_digits):
    cameras = [
        sample_camera(np.random.default_rng(i), r)
        for i, r in enumerate([TRAIN_RANGES, OTHER_CAMERAS_RANGES] * 2)
    ]
    seeds = [[5, i] for i in range(len(cameras))]
    batch = generate_streams(list(test_digits[:4]), seeds, cameras)
    for digit, seed, camera, stream in zip(test_digits[:4], seeds, cameras, batch):
        assert _sha256(generate_stream(digit, seed, camera)) == _sha256(stream)
    assert _sha256(generate_stream(test_digits[0], [6, 0], cameras[0])) != _sha256(batch[0])


def test_background_noise_adds_rate_times_pixels_times_duration(test_digits):
    quiet = generate_stream(test_digits[1], 3, NOMINAL)
    noisy = generate_stream(test_digits[1], 3, replace(NOMINAL, noise_hz=5.0))
    expected = 5.0 * SENSOR * SENSOR * 0.3
    assert abs(len(noisy) - len(quiet) - expected) < 5 * np.sqrt(expected)
    assert set(noisy["p"][len(quiet) :].tolist()) <= {0, 1}
    hot = generate_stream(test_digits[1], 3, replace(NOMINAL, hot_pixels=2, hot_pixel_hz=400.0))
    assert len(hot) - len(quiet) == pytest.approx(2 * 400 * 0.3, rel=0.35)
    extra = np.bincount(hot["y"].astype(int) * SENSOR + hot["x"], minlength=SENSOR * SENSOR) - np.bincount(
        quiet["y"].astype(int) * SENSOR + quiet["x"], minlength=SENSOR * SENSOR
    )
    assert (extra > 0).sum() == 2 and extra.max() > 0.5 * 400 * 0.3  # two pixels, each firing often


def test_streams_are_valid_dvs_events(test_digits):
    cameras = [
        NOMINAL,
        *_draws(TRAIN_RANGES, 3),
        *_draws(OTHER_CAMERAS_RANGES, 3),
        replace(NOMINAL, amplitude=1.6, digit_size=32, offset=(3.0, -3.0), rotation_deg=135.0),
    ]
    streams = generate_streams(
        [test_digits[i % 5 + 2] for i in range(len(cameras))], list(range(len(cameras))), cameras
    )
    for camera, stream in zip(cameras, streams):
        assert stream.dtype == RECORD and len(stream) > 500
        assert (np.diff(stream["t"]) >= 0).all() and stream["t"][0] >= 0
        assert stream["t"][-1] < camera.duration_ms * 1000
        assert stream["x"].max() < SENSOR and stream["y"].max() < SENSOR
        assert set(np.unique(stream["p"]).tolist()) == {0, 1}
        assert decode(encode(stream)).tobytes() == stream.tobytes()
        frames = stream_frames(stream)
        in_bins = (stream["t"] - stream["t"][0]) < 4 * 75_000
        assert frames.sum() == in_bins.sum() and frames[:, 1].sum() == (stream["p"][in_bins] == 1).sum()
    assert len(generate_stream(np.zeros((8, 8)), 1, replace(NOMINAL, digit_size=30))) == 0


def test_bad_camera_parameters_are_rejected():
    with pytest.raises(ValueError):
        CameraParams(contrast=0.0)
    with pytest.raises(ValueError):
        CameraParams(duration_ms=2)  # three legs need 3 ms
    with pytest.raises(ValueError):
        replace(TRAIN_RANGES, paths=("spiral",))


def test_event_drop_thins_counts_and_keeps_them_whole():
    frames = torch.full((4, 2, 34, 34), 10.0)
    generator = torch.Generator().manual_seed(0)
    kept = [drop_events(frames, generator, (0.3, 0.6)) for _ in range(20)]
    for k in kept:
        assert k.shape == frames.shape and torch.equal(k, k.round()) and (k <= frames).all()
        assert 0.2 < float(k.sum() / frames.sum()) < 0.7
    assert torch.equal(drop_events(frames, generator, (1.0, 1.0)), frames)
