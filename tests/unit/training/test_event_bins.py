"""Event frames follow the network's T: T frames cover what the default four cover, each 4/T as
long, through the data sets, the trainer's data, the exported manifest and the config."""

from __future__ import annotations

import pytest
import torch
from test_cifar10_dvs import dvs128_address, make_root, write_aedat2

from tests.helpers import firstspike
from training.config import load_config
from training.data import dataset_info, load_dataset
from training.data.cifar10_dvs import Cifar10DvsDataset


def test_event_bins_follow_t_in_digits_dvs():
    four = load_dataset("digits-dvs", "test")
    eight = load_dataset("digits-dvs", "test", timesteps=8)
    assert four[0][0].shape == (4, 2, 34, 34) and eight[0][0].shape == (8, 2, 34, 34)
    for index in range(5):
        coarse, fine = four[index][0], eight[index][0]
        # 75 ms frames against 37.5 ms ones: each coarse frame is two fine ones, nothing lost
        assert torch.equal(fine.view(4, 2, 2, 34, 34).sum(dim=1), coarse)
    assert dataset_info("digits-dvs", 8).bin_us == dataset_info("digits-dvs").bin_us // 2 == 37_500


def test_event_bins_follow_t_in_cifar10_dvs(tmp_path):
    make_root(tmp_path)
    bin_us = dataset_info("cifar10-dvs", 2).bin_us
    assert bin_us == 650_000  # two frames over the span of four 325 ms ones
    records = [
        (dvs128_address(10, 20, 0), 1_000),
        (dvs128_address(10, 20, 0), 1_000 + 325_000),  # frame 0
        (dvs128_address(30, 40, 1), 1_000 + 2 * 325_000),
    ]  # frame 1
    path = write_aedat2(tmp_path / "CIFAR10-DVS" / "cat" / "cifar10_cat_0.aedat", records)
    dataset = load_dataset("cifar10-dvs", "train", str(tmp_path), timesteps=2)
    frames, _ = dataset[dataset.files.index(path)]
    assert frames.shape == (2, 2, 128, 128)
    assert frames[0, 1, 117, 107] == 2 and frames[1, 0, 97, 87] == 1 and frames.sum() == 3
    assert isinstance(dataset, Cifar10DvsDataset) and (dataset.bins, dataset.bin_us) == (2, 650_000)


def test_event_bins_follow_t_in_the_trainers_data(tmp_path):
    from training.trainer import load_training_data

    make_root(tmp_path)
    config = load_config(
        "cifar10_dvs_vgg11", [f"data_root={tmp_path}", "network.timesteps=6", "train_images=8"]
    )
    train_set, test_set = load_training_data(config)
    assert len(train_set) == 8 and train_set[0][0].shape[0] == 6 and test_set[0][0].shape[0] == 6
    assert test_set.bin_us == dataset_info("cifar10-dvs", 6).bin_us == 216_667


def test_event_bins_follow_t_and_image_data_ignore_it():
    assert dataset_info("digits", 8) == dataset_info("digits")
    assert load_dataset("digits", "test", timesteps=8)[0][0].shape == (1, 8, 8)
    with pytest.raises(ValueError, match="timesteps must be at least 1"):
        load_dataset("digits-dvs", "test", timesteps=0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["bins=8"], "bins=8 does not fit network.timesteps=4"),
        (["network.timesteps=6", "bins=4"], "bins=4 does not fit network.timesteps=6"),
    ],
)
def test_event_bins_that_do_not_fit_t_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config("digits_dvs", overrides)
    assert load_config("digits_dvs", ["network.timesteps=6", "bins=6"]).bins == 6
    with pytest.raises(ValueError, match="bins applies to event data sets; digits holds images"):
        load_config("digits", ["bins=4"])


def test_event_bins_that_do_not_fit_t_end_the_cli_with_one_line():
    completed = firstspike("train", "--config", "digits_dvs", "--set", "bins=6", "--set", "epochs=1")
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "firstspike train: error: bins=6 does not fit network.timesteps=4: the frames encoder feeds "
        "one frame per timestep (leave bins out to follow T)"
    ]
