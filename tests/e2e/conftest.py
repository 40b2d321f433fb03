"""Fixtures of the end-to-end tests: the shared real server, the digits test images as PNG files,
and a model that decides at several timesteps."""

from __future__ import annotations

import pytest

from tests.helpers import png_bytes, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def digits_test_pngs():
    """The 360 digits test images as PNG files (8-bit grey, value min(255, 16 v)), with labels."""
    from training.data.digits import digit_to_png_pixels, digits_split

    images, labels = digits_split("test")
    return [png_bytes(digit_to_png_pixels(image)) for image in images], [int(label) for label in labels]


@pytest.fixture(scope="session")
def mixed_store(tmp_path_factory):
    """A model store with ``mixed/1``: digits after 2 of 10 epochs, whose test decisions spread
    over every timestep (and include ``no_spike``), exported with its ONNX graphs."""
    import torch

    from training.config import load_config
    from training.data import dataset_info, load_dataset
    from training.evaluate import evaluate
    from training.store.export import export_version
    from training.trainer import train

    store = tmp_path_factory.mktemp("mixed-store")
    # The same model whichever tests ran before in this process (torch runtimes set the thread
    # count, and the sums, so the weights, depend on it).
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        network = train(load_config("digits", ["epochs=10"]), progress=False, until_epoch=2).network
    finally:
        torch.set_num_threads(threads)
    result = evaluate(network, load_dataset("digits", "test"))
    assert len({t for t, n in result.decision_timestep_counts.items() if n}) >= 3, (
        result.decision_timestep_counts
    )
    export_version(network, store, "mixed", dataset_info("digits"), result, onnx=True)
    return store


@pytest.fixture(scope="session")
def mixed_indices(mixed_store):
    """64 test-digit indices, ascending, on which ``mixed/1`` decides at every timestep it uses:
    all its later decisions (up to 48) and the earliest step-1 ones to fill up."""
    from training.data import load_dataset
    from training.evaluate import evaluate
    from training.store.load import load_network

    network, _ = load_network(mixed_store / "mixed" / "1")
    steps = evaluate(network, load_dataset("digits", "test")).per_sample["decision_timestep"]
    later = [i for i, step in enumerate(steps) if step > 1][:48]
    first = [i for i, step in enumerate(steps) if step == 1][: 64 - len(later)]
    chosen = sorted(later + first)
    assert len({steps[i] for i in chosen}) >= 3
    return chosen
