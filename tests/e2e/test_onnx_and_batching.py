"""The onnx runtime against the torch runtime, and per-timestep dynamic batching."""

from __future__ import annotations

import asyncio
import concurrent.futures

import numpy as np
import pytest
import torch

from service.inference.batching import Batcher
from service.inference.early_exit import FIRST_SPIKE, Widths, classify
from service.inference.runtimes.base import first_step_in_parts
from service.inference.runtimes.onnx_runtime import OnnxRuntime
from service.inference.runtimes.torch_runtime import TorchRuntime
from tests.helpers import MODEL_STORE, CountingRuntime, start_server, stop_server
from training.contract.manifest import Manifest, read_manifest
from training.data import load_dataset


def _test_images() -> np.ndarray:
    dataset = load_dataset("digits", "test")
    return torch.stack([dataset[i][0] for i in range(len(dataset))]).numpy()


def _runtimes(version_dir):
    manifest = read_manifest(version_dir)
    return (
        TorchRuntime.load(version_dir, manifest),
        OnnxRuntime(version_dir, manifest),
        Widths.from_manifest(manifest),
    )


@pytest.mark.parametrize("which", ["shipped", "mixed"])
def test_onnx_and_torch_agree_on_all_test_digits(which, mixed_store):
    version_dir = MODEL_STORE / "digits" / "1" if which == "shipped" else mixed_store / "mixed" / "1"
    torch_runtime, onnx_runtime, widths = _runtimes(version_dir)
    images = _test_images()
    states, encoded = [], []
    for runtime in (torch_runtime, onnx_runtime):
        encoded.append(runtime.encode(images))
        states.append(runtime.initial_state(len(images)))
    parted = np.zeros(len(images), dtype=bool)
    for timestep in range(1, torch_runtime.timesteps + 1):
        steps = np.full(len(images), timestep)
        a = torch_runtime.step(encoded[0], steps, states[0])
        b = onnx_runtime.step(encoded[1], steps, states[1])
        states = [a.state, b.state]
        parted |= (np.abs(a.membrane - b.membrane) > 1e-4).any(axis=1) | (a.spikes != b.spikes).any(axis=1)
    # The two sum convolutions in different orders: a hidden neuron that lands within float
    # rounding of its threshold may fire in one and not the other (one row of 360 in a model
    # trained on one thread); every other row agrees to 1e-4, and every answer below exactly.
    assert parted.sum() <= 1, np.flatnonzero(parted)
    by_torch = classify(torch_runtime, images, widths)
    by_onnx = classify(onnx_runtime, images, widths)
    assert [(o.class_index, o.decision_timestep) for o in by_torch] == [
        (o.class_index, o.decision_timestep) for o in by_onnx
    ]


def test_the_fused_first_step_graph_gives_the_answers_of_encoder_then_step(mixed_store):
    """first_step.onnx (encoder and timestep 1 from rest in one graph) against the two graphs
    it replaces, and a version exported before it existed, which runs those two."""
    version_dir = mixed_store / "mixed" / "1"
    manifest = read_manifest(version_dir)
    assert manifest.onnx is not None and manifest.onnx.first_step is not None
    fused = OnnxRuntime(version_dir, manifest)
    before_first_step = manifest.as_stored()
    before_first_step["onnx"].pop("first_step")
    in_parts = OnnxRuntime(version_dir, Manifest.model_validate(before_first_step))
    assert in_parts.first_stepper is None
    images = _test_images()
    encoded, result = fused.first_step(images)
    expected_encoded, expected = first_step_in_parts(in_parts, images)
    assert np.array_equal(encoded, expected_encoded)
    for name in ("current", "membrane", "spikes", "layer_spikes", "synaptic_inputs"):
        assert np.array_equal(getattr(result, name), getattr(expected, name)), name
    for got, want in zip(result.state, expected.state):
        assert np.array_equal(got, want)
    widths = Widths.from_manifest(manifest)
    assert_same_answers(classify(fused, images, widths), classify(in_parts, images, widths))


def test_the_decision_only_first_step_gives_timestep_1_outputs_of_the_full_one(mixed_store):
    version_dir = mixed_store / "mixed" / "1"
    manifest = read_manifest(version_dir)
    assert manifest.onnx is not None and manifest.onnx.first_decision is not None
    assert manifest.onnx.first_decision.outputs == (
        "current",
        "membrane",
        "spikes",
        "layer_spikes",
        "synaptic_inputs",
    )
    runtime = OnnxRuntime(version_dir, manifest)
    images = _test_images()
    decided = runtime.first_decision(images)
    _, full = runtime.first_step(images)
    assert decided.state is None
    for name in ("current", "membrane", "spikes", "layer_spikes", "synaptic_inputs"):
        assert np.array_equal(getattr(decided, name), getattr(full, name)), name


@pytest.mark.parametrize("runtime_name", ["torch", "onnx"])
def test_starting_with_the_decision_only_step_changes_no_answer(runtime_name, mixed_store, mixed_indices):
    """Forced on for a model whose decisions spread over every timestep: each row that goes on
    runs timestep 1 again for its state, and every answer is the full start's, alone and batched."""
    torch_runtime, onnx_runtime, widths = _runtimes(mixed_store / "mixed" / "1")
    runtime = torch_runtime if runtime_name == "torch" else onnx_runtime
    images = _test_images()[mixed_indices]
    runtime.decides_first = False
    expected = [classify(runtime, images[i : i + 1], widths)[0] for i in range(64)]
    everything = classify(runtime, images, widths)
    runtime.decides_first = True
    counting = CountingRuntime(runtime)
    alone = [classify(counting, images[i : i + 1], widths)[0] for i in range(64)]
    assert_same_answers(alone, expected)
    going_on = sum(o.decision_timestep > 1 for o in expected)
    assert going_on >= 10 and counting.first_step_rows == going_on
    assert counting.sample_timesteps == sum(o.decision_timestep for o in expected) + going_on
    assert_same_answers(classify(runtime, images, widths), everything)
    all_t = classify(runtime, images, widths, early_exit=False)  # nothing may exit: the full start
    assert [o.timesteps_run for o in all_t] == [4] * 64
    batcher = Batcher(CountingRuntime(runtime), widths, FIRST_SPIKE, max_batch_size=64)

    async def run_all():
        results = await asyncio.gather(*(batcher.submit(image) for image in images))
        await batcher.close()
        return results

    assert_same_answers(asyncio.run(run_all()), expected)


def test_the_decision_only_start_is_chosen_where_it_costs_less_on_average():
    from service.inference.runtimes.first_decision import decision_first_pays, share_going_on

    shipped = read_manifest(MODEL_STORE / "digits" / "1")

    def evaluated(timesteps: int, counts: dict[str, int]) -> Manifest:
        evaluation = shipped.evaluation.model_copy(update={"decision_timestep_counts": counts})
        return shipped.model_copy(update={"timesteps": timesteps, "evaluation": evaluation})

    assert share_going_on(evaluated(4, {"1": 90, "2": 6, "3": 3, "4": 1})) == pytest.approx(0.1)
    assert share_going_on(evaluated(1, {})) == 0.0  # a one-step ANN never goes on
    assert share_going_on(evaluated(4, {})) is None
    # C_decision + p C_full < C_full: 88 + 0.1 * 100 < 100, but 95 + 0.1 * 100 > 100
    assert decision_first_pays(88.0, 100.0, 0.1) and not decision_first_pays(95.0, 100.0, 0.1)
    assert not decision_first_pays(50.0, 100.0, None)


def test_each_version_chooses_its_start(tmp_path, mixed_store):
    """The shipped digits weights decide every test input at timestep 1: the decision-only
    start. A version whose evaluation sends 60% on pays a second first step for most rows: the
    full one. (The half-trained mixed model sends about a tenth on, near where the two starts
    cost the same, so its choice is left to the timing.)"""
    from training.data import dataset_info
    from training.evaluate import evaluate
    from training.store.export import export_version
    from training.store.load import load_network

    network, _ = load_network(MODEL_STORE / "digits" / "2")
    result = evaluate(network, load_dataset("digits", "test"))
    assert result.decision_timestep_counts[1] == len(load_dataset("digits", "test"))
    digits = export_version(network, tmp_path, "digits", dataset_info("digits"), result, onnx=True)
    assert OnnxRuntime(digits, read_manifest(digits)).decides_first
    most_go_on = read_manifest(mixed_store / "mixed" / "1").as_stored()
    most_go_on["evaluation"]["decision_timestep_counts"] = {"1": 40, "2": 60}
    assert not OnnxRuntime(mixed_store / "mixed" / "1", Manifest.model_validate(most_go_on)).decides_first


def assert_same_answers(got, expected) -> None:
    """Decisions, exit reasons and spike counts exactly; membranes to float32 rounding (a batched
    convolution may sum in another order than a single-sample one)."""
    assert [
        (
            o.class_index,
            o.decision_timestep,
            o.exit_reason,
            o.timesteps_run,
            o.output_spikes,
            o.layer_spikes,
            o.output_raster,
        )
        for o in got
    ] == [
        (
            o.class_index,
            o.decision_timestep,
            o.exit_reason,
            o.timesteps_run,
            o.output_spikes,
            o.layer_spikes,
            o.output_raster,
        )
        for o in expected
    ]
    assert np.allclose([o.scores for o in got], [o.scores for o in expected], rtol=0, atol=1e-5)
    assert np.allclose([o.synaptic_inputs for o in got], [o.synaptic_inputs for o in expected], rtol=1e-6)


@pytest.mark.parametrize("runtime_name", ["torch", "onnx"])
def test_64_concurrent_requests_get_their_solo_answers_and_no_work_is_wasted(
    runtime_name, mixed_store, mixed_indices
):
    torch_runtime, onnx_runtime, widths = _runtimes(mixed_store / "mixed" / "1")
    inner = torch_runtime if runtime_name == "torch" else onnx_runtime
    # The full first step, so that every timestep run is one a row needs (the decision-only
    # start, which runs timestep 1 again for rows that go on, has a test of its own below).
    inner.decides_first = False
    images = _test_images()[mixed_indices]
    alone = [classify(inner, images[i : i + 1], widths)[0] for i in range(64)]
    assert len({o.decision_timestep for o in alone}) >= 3, "the check needs mixed decision timesteps"
    counting = CountingRuntime(inner)
    batcher = Batcher(counting, widths, FIRST_SPIKE, max_batch_size=64)

    async def run_all():
        first = [asyncio.create_task(batcher.submit(images[i])) for i in range(40)]
        await asyncio.sleep(0.01)  # the rest arrive while the first ones are mid-flight
        rest = [asyncio.create_task(batcher.submit(images[i])) for i in range(40, 64)]
        results = await asyncio.gather(*first, *rest)
        await batcher.close()
        return results

    together = asyncio.run(run_all())
    assert_same_answers(together, alone)
    assert counting.sample_timesteps == sum(o.decision_timestep for o in alone)
    assert counting.largest_batch > 1


def test_early_exit_off_rows_stay_until_t_while_others_leave(mixed_store):
    torch_runtime, _, widths = _runtimes(mixed_store / "mixed" / "1")
    images = _test_images()[:16]
    counting = CountingRuntime(torch_runtime)
    batcher = Batcher(counting, widths, FIRST_SPIKE, max_batch_size=16)

    async def run_all():
        tasks = [batcher.submit(images[i], early_exit=bool(i % 2)) for i in range(16)]
        results = await asyncio.gather(*tasks)
        await batcher.close()
        return results

    results = asyncio.run(run_all())
    alone = [classify(torch_runtime, images[i : i + 1], widths, early_exit=bool(i % 2))[0] for i in range(16)]
    assert_same_answers(results, alone)
    assert counting.sample_timesteps == sum(o.timesteps_run for o in alone)
    assert all(o.timesteps_run == 4 for o in results[0::2])


def test_concurrent_http_requests_with_batching_on_the_onnx_runtime(
    tmp_path, mixed_store, mixed_indices, digits_test_pngs
):
    import httpx

    pngs = [digits_test_pngs[0][i] for i in mixed_indices]
    server = start_server(
        tmp_path, env={"FIRSTSPIKE_RUNTIME": "onnx", "FIRSTSPIKE_MAX_BATCH_SIZE": "64"}, store=mixed_store
    )
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            alone = [
                client.post("/classify", content=png, headers={"content-type": "image/png"}).json()
                for png in pngs
            ]

            def send(png):
                with httpx.Client(base_url=server.url, timeout=60) as own:
                    return own.post("/classify", content=png, headers={"content-type": "image/png"}).json()

            with concurrent.futures.ThreadPoolExecutor(64) as pool:
                together = list(pool.map(send, pngs))
            metrics = client.get("/metrics").text
    finally:
        stop_server(server)
    key = lambda a: (a["class_index"], a["decision_timestep"], a["exit_reason"], a["spikes"])  # noqa: E731
    assert [key(a) for a in together] == [key(a) for a in alone]
    assert np.allclose([a["scores"] for a in together], [a["scores"] for a in alone], rtol=0, atol=1e-5)
    assert len({a["decision_timestep"] for a in alone}) >= 3
    assert 'firstspike_model_info{model="mixed",runtime="onnx",timesteps="4",version="1"} 1.0' in metrics
    assert "firstspike_batch_size_bucket" in metrics


@pytest.mark.parametrize("version", ["digits/3", "digits-dvs/3"])
def test_steps_that_read_the_input_answer_as_shipped_steps_that_read_features(version, tmp_path):
    """Shipped graphs carry the encoder's features from one timestep to the next; this
    release's step graph computes them from the input itself, so a running row carries its
    input. A shipped version's weights exported again give every output of every timestep bit
    for bit as its shipped graphs: images, and event frames, whose input changes each step."""
    from training.data import dataset_info
    from training.evaluate import evaluate
    from training.store.export import export_version
    from training.store.load import load_network

    network, manifest = load_network(MODEL_STORE / version)
    assert manifest.onnx is not None and manifest.onnx.step.inputs[0] == "features"
    dataset = manifest.evaluation.dataset
    test = load_dataset(dataset, "test", timesteps=network.timesteps)
    again = export_version(
        network,
        tmp_path,
        manifest.name,
        dataset_info(dataset, network.timesteps),
        evaluate(network, [test[i] for i in range(8)]),
        onnx=True,
    )
    shipped, current = OnnxRuntime(MODEL_STORE / version, manifest), OnnxRuntime(again, read_manifest(again))
    assert shipped.encoder is not None and current.encoder is None
    inputs = torch.stack([test[i][0] for i in range(len(test))]).numpy()
    states = [runtime.initial_state(len(inputs)) for runtime in (shipped, current)]
    for timestep in range(1, network.timesteps + 1):
        at_t = inputs[:, timestep - 1] if manifest.kind == "events" else inputs
        steps = np.full(len(inputs), timestep)
        results = [
            runtime.step(runtime.encode(at_t), steps, state)
            for runtime, state in zip((shipped, current), states)
        ]
        for name in ("current", "membrane", "spikes", "layer_spikes", "synaptic_inputs"):
            np.testing.assert_array_equal(getattr(results[1], name), getattr(results[0], name), err_msg=name)
        states = [result.state for result in results]
        assert (results[1].layer_spikes > 0).any()


class _SlowRuntime(CountingRuntime):
    """A runtime whose first steps take a while, so that a queue can build up behind one."""

    def first_step(self, images):
        import time

        time.sleep(0.2)
        return super().first_step(images)

    def first_decision(self, images):
        import time

        time.sleep(0.2)
        return super().first_decision(images)


def test_requests_that_gave_up_while_queued_are_not_stepped():
    _, onnx_runtime, widths = _runtimes(MODEL_STORE / "digits" / "3")
    images = _test_images()[:4]
    counting = _SlowRuntime(onnx_runtime)
    batcher = Batcher(counting, widths, FIRST_SPIKE, max_batch_size=1)

    async def run():
        first = asyncio.create_task(batcher.submit(images[0]))
        await asyncio.sleep(0.05)  # the first is being stepped; these wait in the queue
        waiting = [asyncio.create_task(batcher.submit(image)) for image in images[1:]]
        await asyncio.sleep(0.01)
        for task in waiting:  # as a request timeout does
            task.cancel()
        outcome = await first
        await asyncio.sleep(0.3)
        await batcher.close()
        return outcome

    assert asyncio.run(run()).decision_timestep == 1
    assert counting.sample_timesteps == 1  # the three cancelled requests were never started


def test_a_stopped_batcher_refuses_work_at_once_and_fails_what_waits():
    from service.inference.batching import BatcherClosed

    _, onnx_runtime, widths = _runtimes(MODEL_STORE / "digits" / "3")
    images = _test_images()[:3]
    batcher = Batcher(_SlowRuntime(onnx_runtime), widths, FIRST_SPIKE, max_batch_size=1, name="digits-3")

    async def run():
        tasks = [asyncio.create_task(batcher.submit(image)) for image in images]
        await asyncio.sleep(0.05)
        batcher.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        with pytest.raises(BatcherClosed, match="digits-3"):
            await asyncio.wait_for(batcher.submit(images[0]), 1)
        await batcher.close()
        return results

    assert all(isinstance(result, BatcherClosed) for result in asyncio.run(run()))


def test_a_retired_version_keeps_its_batcher_until_its_last_user_is_done():
    """A reload retires a version that requests still work with: their batcher stops only when
    the last of them is done (the race in which a request met a closed batcher)."""
    from service.inference.registry import LoadedModel

    _, onnx_runtime, widths = _runtimes(MODEL_STORE / "digits" / "3")
    manifest = read_manifest(MODEL_STORE / "digits" / "3")
    batcher = Batcher(onnx_runtime, widths, FIRST_SPIKE, max_batch_size=4)
    model = LoadedModel("digits", 3, manifest, onnx_runtime, None, widths, FIRST_SPIKE, batcher=batcher)
    image = _test_images()[0]

    async def run():
        with model.in_use():
            model.retire()  # the reload happens while the request is on the version
            assert not batcher.closed
            outcome = await batcher.submit(image)
        assert batcher.closed
        return outcome

    assert asyncio.run(run()).decision_timestep == 1
    idle = LoadedModel(
        "digits",
        3,
        manifest,
        onnx_runtime,
        None,
        widths,
        FIRST_SPIKE,
        batcher=Batcher(onnx_runtime, widths, FIRST_SPIKE, max_batch_size=4),
    )
    idle.retire()
    assert idle.batcher.closed  # nobody on it: stopped at once
