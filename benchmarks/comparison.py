"""firstspike against what a user would otherwise do, on the shipped digits and fashion-mnist
models (trained weights, real test images, so early exit stops where real decisions stop) and a
VGG-11 (3x32x32, random weights, made to decide at timestep 1 as a trained CIFAR-10 VGG-11 does,
paper Table I), in one run:

  (a) early exit vs all T timesteps, same runtime (compute per request, in process);
  (b) torch vs onnx runtime;
  (c) batch size 1 vs per-timestep dynamic batching, 32 concurrent clients over real HTTP;
  (d) the same architecture as an ANN through the same service path;
  (e) a naive baseline: a plain FastAPI endpoint running all T timesteps in torch (mean output).

    python -m benchmarks.comparison [--quick]
    python -m benchmarks.comparison --quick --json   # SNN / ANN at batch size 1, as JSON

Before the tables, a profile of one request (batch size 1) and of one batched timestep (32
rows) per model and runtime: where the time goes (``benchmarks/profile.py``).

The ANN twins (same architecture, ReLU, one pass) have random weights: an ANN's compute does not
depend on its weights. Everything runs on 127.0.0.1 and is bounded in requests.
Figures are ratios measured side by side; absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sized
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmarks.common import (
    ROOT,
    LoadResult,
    digits_pngs,
    fashion_pngs,
    interleaved_p50_ms,
    load,
    measure,
    png,
    start_service,
    start_uvicorn_factory,
    wrk_available,
)
from benchmarks.profile import interleaved_ratio, profile_batched_step, profile_request
from service.inference.early_exit import Widths, classify
from service.inference.preprocessing import ImageLimits, InputSpec, preprocess
from service.inference.runtimes.base import Runtime
from service.inference.runtimes.onnx_runtime import OnnxRuntime
from service.inference.runtimes.torch_runtime import TorchRuntime
from training.contract.manifest import read_manifest
from training.data import dataset_info, load_dataset
from training.data.info import DatasetInfo
from training.evaluate import evaluate
from training.network.network import SpikingNetwork
from training.network.spec import NetworkSpec
from training.store.export import export_version
from training.store.load import load_network

MODELS = ("digits", "fashion-mnist", "vgg11")
SHIPPED = ("digits", "fashion-mnist")
RUNTIME_COPIES = 3  # loads of each model that the in-process SNN / ANN ratio takes turns among
CALLS_PER_ROUND = 10
# Of a model's seconds, the share each in-process ratio takes turns for: enough rounds that the
# median's quartiles stay narrow on a shared machine.
RATIO_SHARE = 1.5
VGG_INFO = DatasetInfo(
    "random-rgb", (3, 32, 32), tuple(f"class_{i}" for i in range(10)), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
)


def _export(
    network: SpikingNetwork,
    store: Path,
    name: str,
    info: DatasetInfo,
    sample: list[tuple[torch.Tensor, int]] | None = None,
) -> None:
    """With its evaluation on ``sample`` (default: random inputs), from which the onnx runtime
    learns how many inputs go on past timestep 1."""
    split = "test" if sample else "random"
    sample = sample or [(torch.rand(network.spec.input_shape), 0) for _ in range(4)]
    # evaluate batches any sequence of (input, label) through a DataLoader; it annotates Dataset.
    evaluation = evaluate(network, cast("Dataset[tuple[torch.Tensor, int]]", sample))
    export_version(network, store, name, info, evaluation, split=split, onnx=True)


def _ann_twin(network: SpikingNetwork) -> SpikingNetwork:
    return SpikingNetwork(
        NetworkSpec.from_dict({**network.spec.to_dict(), "coding": "ann", "encoder": None})
    ).eval()


def build_store(root: Path) -> Path:
    """The latest shipped digits and fashion-mnist (the versions a request without ``version``
    gets) and a VGG-11, each with a same-architecture ANN twin, all exported with every ONNX graph.

    Args:
        root: A scratch folder; the store is made in ``root/store``.

    Returns:
        The store, each model as version 1.
    """
    store = root / "store"
    torch.manual_seed(0)
    for model in SHIPPED:  # the shipped weights, with the graphs this checkout's exporter writes
        network, manifest = load_network(ROOT / "model_store" / model)
        info = dataset_info(manifest.evaluation.dataset)
        test = load_dataset(info.name, "test")
        # the inputs the benchmark sends; torch's Dataset type declares no __len__
        sample = [test[i] for i in range(min(len(cast(Sized, test)), 512))]
        _export(network, store, model, info, sample)
        _export(_ann_twin(network), store, f"{model}-ann", info, sample)
    vgg = SpikingNetwork(NetworkSpec("vgg11", VGG_INFO.input_shape, 10, timesteps=4)).eval()
    bias, neuron = vgg.head.module.bias, vgg.spec.output_neuron
    assert bias is not None and neuron is not None  # nn.Linear has a bias; the spec fills the neuron
    with torch.no_grad():  # class 0's output neuron fires at timestep 1 for every input
        bias[0] = 2 * neuron.threshold
    _export(vgg, store, "vgg11", VGG_INFO)
    _export(_ann_twin(vgg), store, "vgg11-ann", VGG_INFO)
    return store


def random_rgb_pngs(count: int) -> list[bytes]:
    """``count`` 32 x 32 RGB PNGs of uniform noise (seed 0), the VGG-11's inputs."""
    generator = np.random.default_rng(0)
    return [png(generator.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(count)]


def model_inputs(store: Path, count: int) -> dict[str, list[bytes]]:
    """PNGs per model, in their data set's order except that the first one is an input the SNN
    decides at timestep 1 (wrk sends only the first).

    Args:
        store: The store of ``build_store``.
        count: Fashion-MNIST test images to take (digits: all of its test split; VGG-11: 64).

    Returns:
        The PNGs per model name of ``MODELS``.
    """
    inputs = {"digits": digits_pngs(), "fashion-mnist": fashion_pngs(count), "vgg11": random_rgb_pngs(64)}
    for model, pngs in inputs.items():
        runtime, widths, spec, _ = load_served(store, model, OnnxRuntime)
        first = next(
            i
            for i, body in enumerate(pngs)
            if classify(runtime, preprocess(body, spec, ImageLimits())[None], widths)[0].decision_timestep
            == 1
        )
        inputs[model] = [pngs[first], *pngs[:first], *pngs[first + 1 :]]
    return inputs


class Served(NamedTuple):
    """One stored version loaded into a runtime, with what the early-exit loop needs."""

    runtime: Runtime
    widths: Widths
    spec: InputSpec
    decoding: str


def load_served(
    store: Path, name: str, kind: type[OnnxRuntime] | type[TorchRuntime], threads: int = 1
) -> Served:
    """Version 1 of a model of ``store`` loaded into a runtime of its own.

    Args:
        store: The store of ``build_store``.
        name: The model's name.
        kind: The runtime class.
        threads: The runtime's intra-op threads.

    Returns:
        The runtime, with the model's record sizes, input spec and decoding.
    """
    version_dir = store / name / "1"
    manifest = read_manifest(version_dir)
    runtime: Runtime = (
        kind.load(version_dir, manifest, threads)
        if issubclass(kind, TorchRuntime)
        else kind(version_dir, manifest, threads)
    )
    return Served(
        runtime, Widths.from_manifest(manifest), InputSpec.from_manifest(manifest), manifest.decoding
    )


def profiles(
    store: Path, model: str, images: list[np.ndarray], seconds: float
) -> dict[tuple[str, str, str], dict[str, float]]:
    """Request and batched-timestep profiles of the SNN and its ANN twin, both runtimes."""
    result = {}
    for name in (model, f"{model}-ann"):
        for kind in (OnnxRuntime, TorchRuntime):
            runtime, widths, _, decoding = load_served(store, name, kind)
            result[(name, runtime.name, "request")] = profile_request(
                runtime, widths, images, decoding, seconds
            )
            result[(name, runtime.name, "batch32")] = profile_batched_step(
                runtime, widths, np.concatenate((images * 32)[:32]), decoding, seconds
            )
    return result


def in_process(
    store: Path, model: str, images: list[np.ndarray], seconds: float
) -> dict[tuple[str, str] | tuple[str, str, bool], float]:
    """Microseconds per request at batch size 1 by (model, runtime, early exit), SNN and ANN
    twin, and the SNN's mean decision timestep by (model, "mean_decision_timestep")."""
    torch.set_num_threads(1)
    results: dict[tuple[str, str] | tuple[str, str, bool], float] = {}
    for name in (model, f"{model}-ann"):
        for kind in (TorchRuntime, OnnxRuntime):
            runtime, widths, _, decoding = load_served(store, name, kind)
            for early_exit in (True, False) if decoding == "first_spike" else (True,):
                key = (name, runtime.name, early_exit)
                results[key] = profile_request(runtime, widths, images, decoding, seconds, early_exit)[
                    "total"
                ]
                if early_exit and decoding == "first_spike":
                    results[(name, "mean_decision_timestep")] = statistics.mean(
                        classify(runtime, image, widths)[0].decision_timestep for image in images
                    )
    return results


def step_cost_per_sample(
    store: Path, model: str, threads: int, seconds: float
) -> dict[tuple[str, int], float]:
    """ms per sample of one runtime timestep at batch 1 and 32: what batching can gain at most."""
    torch.set_num_threads(threads)
    costs = {}
    for kind in (TorchRuntime, OnnxRuntime):
        runtime, _, spec, _ = load_served(store, model, kind, threads)
        for batch in (1, 32):
            images = np.random.default_rng(0).random(
                (batch, spec.channels, spec.height, spec.width), dtype=np.float32
            )
            encoded, state = runtime.encode(images), runtime.initial_state(batch)
            steps = np.ones(batch, dtype=np.int64)
            runtime.step(encoded, steps, state)
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds or count < 3:
                runtime.step(encoded, steps, state)
                count += 1
            costs[(runtime.name, batch)] = (time.perf_counter() - started) / count / batch * 1000
    torch.set_num_threads(1)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="only SNN / ANN at batch size 1 (onnx, in process and over HTTP at one client), as JSON",
    )
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp))
        inputs = model_inputs(store, 256)
        if args.json:
            print(json.dumps(snn_vs_ann(store, inputs, 8.0 * scale), indent=2))
            return 0
        seconds = {"digits": 5 * scale, "fashion-mnist": 8 * scale, "vgg11": 8 * scale}
        compute: dict[str, dict[Any, Any]] = {}  # in_process's figures, and step_cost_per_sample's
        profiled: dict[str, dict[tuple[str, str, str], dict[str, float]]] = {}
        for model in MODELS:
            spec = InputSpec.from_manifest(read_manifest(store / model / "1"))
            images = [preprocess(png, spec, ImageLimits())[None] for png in inputs[model][:64]]
            profiled[model] = profiles(store, model, images, 1.0 * scale)
            compute[model] = in_process(store, model, images, 2.0 * scale)
            compute[model]["step_cost"] = step_cost_per_sample(store, model, os.cpu_count() or 1, 1.0 * scale)
        http: dict[tuple[str, str, int | str], LoadResult] = {}
        for runtime in ("torch", "onnx"):
            for batch in (1, 32):
                server = start_service(
                    store, {"FIRSTSPIKE_RUNTIME": runtime, "FIRSTSPIKE_MAX_BATCH_SIZE": str(batch)}
                )
                try:
                    for model in MODELS:
                        for name in (model, f"{model}-ann"):
                            params = {"model": name}
                            load(server.url, inputs[model], 40, 4, params)  # warm up
                            if batch == 1:
                                http[(name, runtime, "single")] = measure(
                                    server.url, inputs[model], 1, seconds[model], params
                                )
                            http[(name, runtime, batch)] = measure(
                                server.url, inputs[model], args.clients, seconds[model], params
                            )
                finally:
                    server.stop()
        for model in MODELS:
            naive = start_uvicorn_factory(
                "benchmarks.naive_app:create_app", {"NAIVE_MODEL_DIR": str(store / model / "1")}
            )
            try:
                load(naive.url, inputs[model], 40, 4)
                http[(model, "naive", 1)] = measure(naive.url, inputs[model], args.clients, seconds[model])
            finally:
                naive.stop()
    report_profiles(profiled)
    report(compute, http, args.clients)
    return 0


def _turns(
    runtimes: list[Runtime], images: list[np.ndarray], calls_per_round: int
) -> Iterator[tuple[Runtime, np.ndarray]]:
    """(runtime, image) for each call: images in turn, the runtime changing every round."""
    inputs = itertools.cycle(images)
    for runtime in itertools.cycle(runtimes):
        for _ in range(calls_per_round):
            yield runtime, next(inputs)


def _in_process_ratio(
    snn_copies: list[Served], ann_copies: list[Served], images: list[np.ndarray], seconds: float
) -> tuple[float, list[float]]:
    """``interleaved_ratio`` of ``classify`` on ``images``, each side taking turns among its loads."""
    (_, widths, _, decoding), (_, ann_widths, _, ann_decoding) = snn_copies[0], ann_copies[0]
    snn_calls, ann_calls = (
        _turns([copy.runtime for copy in copies], images, CALLS_PER_ROUND)
        for copies in (snn_copies, ann_copies)
    )
    return interleaved_ratio(
        lambda: classify(*next(snn_calls), widths, decoding=decoding),
        lambda: classify(*next(ann_calls), ann_widths, decoding=ann_decoding),
        seconds,
        CALLS_PER_ROUND,
    )


def snn_vs_ann(store: Path, inputs: dict[str, list[bytes]], seconds: float) -> dict[str, dict[str, Any]]:
    """Per model: the SNN's cost over its ANN twin's at batch size 1 with the onnx runtime, in
    process (on inputs the SNN decides at timestep 1; and the mean over all real inputs) and over
    HTTP (p50 at one client, an input decided at timestep 1), with the request profiles.

    The two ratios of the acceptance are measured interleaved (``interleaved_ratio``,
    ``interleaved_p50_ms``): SNN and ANN take turns every few milliseconds, so the drift of a
    shared machine cancels instead of landing on whichever ran second. In process, each side
    takes turns among ``RUNTIME_COPIES`` loads of its model, one load per round: where one
    load's buffers happen to lie makes it a little faster or slower than another load of the same
    graph, which a single pair would carry into the ratio.

    Where the SNN's runtime starts with the full first step (some inputs go on, so timestep 1
    writes their state), ``snn_ann_ratio_in_process_decision_only_start`` is the same ratio with
    the decision-only start forced: what timestep 1 costs without that state."""
    torch.set_num_threads(1)
    result: dict[str, dict[str, Any]] = {}
    for model in MODELS:
        snn_copies = [load_served(store, model, OnnxRuntime) for _ in range(RUNTIME_COPIES)]
        ann_copies = [load_served(store, f"{model}-ann", OnnxRuntime) for _ in range(RUNTIME_COPIES)]
        (snn, widths, spec, decoding), (ann, ann_widths, _, ann_decoding) = snn_copies[0], ann_copies[0]
        images = [preprocess(body, spec, ImageLimits())[None] for body in inputs[model][:64]]
        decided_at = [classify(snn, image, widths)[0].decision_timestep for image in images]
        first = [image for image, timestep in zip(images, decided_at) if timestep == 1]
        ratio, rounds = _in_process_ratio(snn_copies, ann_copies, first, RATIO_SHARE * seconds)
        snn_profile = profile_request(snn, widths, images, decoding, seconds / 4)
        snn_first = profile_request(snn, widths, first, decoding, seconds / 4)
        ann_profile = profile_request(ann, ann_widths, images, ann_decoding, seconds / 4)
        quartiles = statistics.quantiles(rounds, n=4)
        result[model] = {
            "mean_decision_timestep": statistics.mean(decided_at),
            "decided_at_timestep_1": len(first) / len(images),
            "snn_ann_ratio_in_process": ratio,
            "snn_ann_ratio_in_process_quartiles": [quartiles[0], quartiles[2]],
            "snn_ann_ratio_in_process_all_inputs": snn_profile["total"] / ann_profile["total"],
            "profile_us": {"snn_timestep_1": snn_first, "snn_all_inputs": snn_profile, "ann": ann_profile},
        }
        if not snn.decides_first and isinstance(snn, OnnxRuntime) and snn.first_decider is not None:
            for copy in snn_copies:
                copy.runtime.decides_first = True
            result[model]["snn_ann_ratio_in_process_decision_only_start"] = _in_process_ratio(
                snn_copies, ann_copies, first, RATIO_SHARE * seconds
            )[0]
    server = start_service(store, {"FIRSTSPIKE_RUNTIME": "onnx", "FIRSTSPIKE_MAX_BATCH_SIZE": "1"})
    try:
        for model in MODELS:
            body = inputs[model][0]  # decided at timestep 1 by the SNN
            load(server.url, [body], 40, 1, {"model": model})  # warm up
            load(server.url, [body], 40, 1, {"model": f"{model}-ann"})
            latency = interleaved_p50_ms(server.url, body, [model, f"{model}-ann"], seconds)
            result[model]["http_p50_ms"] = latency
            result[model]["snn_ann_ratio_http_p50"] = latency[model] / latency[f"{model}-ann"]
    finally:
        server.stop()
    return result


def report_profiles(profiled: dict[str, dict[tuple[str, str, str], dict[str, float]]]) -> None:
    """Print ``profiles``' results per model as one Markdown table."""

    def part(p: dict[str, float], call: str, session: str) -> str:
        return f"{p[call]:.0f} ({p[session]:.0f})" if p[session] else f"{p[call]:.0f}"

    print("## Profile: microseconds per request (batch size 1) and per timestep of 32 rows, by part")
    print("(runtime calls, with the graph run inside them in brackets for the onnx runtime)")
    print(
        "| model | runtime | what | total | first decision | first step | encode | initial state | step | "
        "select + merge | loop bookkeeping |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for results in profiled.values():
        for (name, runtime, what), p in results.items():
            label = "one request" if what == "request" else "one timestep, 32 rows"
            print(
                f"| {name} | {runtime} | {label} | {p['total']:.0f} | "
                f"{part(p, 'first_decision', 'first_decider.run')} | "
                f"{part(p, 'first_step', 'first_stepper.run')} | "
                f"{part(p, 'encode', 'encoder.run')} | {p['initial_state']:.0f} | "
                f"{part(p, 'step', 'stepper.run')} | "
                f"{p['select'] + p['merge']:.0f} | {p['loop']:.0f} |"
            )
    print()


def report(
    compute: dict[str, dict[Any, Any]], http: dict[tuple[str, str, int | str], LoadResult], clients: int
) -> None:
    """Print the tables (a) to (e) and the ratios."""
    timesteps = 4
    print("## (a) early exit vs all T, (b) torch vs onnx, (d) ANN: compute per request, in process, batch 1")
    print(
        "| model | runtime | mean decision timestep | early exit (us) | all T (us) | all T / early exit | "
        "goal 0.85 T / mean step | ANN (us) | SNN / ANN |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model, results in compute.items():
        step = results[(model, "mean_decision_timestep")]
        for runtime in ("torch", "onnx"):
            early, full = results[(model, runtime, True)], results[(model, runtime, False)]
            ann = results[(f"{model}-ann", runtime, True)]
            print(
                f"| {model} | {runtime} | {step:.2f} | {early:.0f} | {full:.0f} | {full / early:.2f}x | "
                f"{0.85 * timesteps / step:.2f}x | {ann:.0f} | {early / ann:.2f}x |"
            )
    print()
    print(
        f"## One runtime timestep, ms per sample, {os.cpu_count()} intra-op threads "
        "(the most batching can gain)"
    )
    print("| model | torch batch 1 | torch batch 32 | onnx batch 1 | onnx batch 32 |")
    print("|---|---|---|---|---|")
    for model, results in compute.items():
        cost = results["step_cost"]
        print(
            f"| {model} | {cost[('torch', 1)]:.3f} | {cost[('torch', 32)]:.3f} | {cost[('onnx', 1)]:.3f} | "
            f"{cost[('onnx', 32)]:.3f} |"
        )
    print()
    generator = (
        "wrk, one image per model"
        if wrk_available()
        else "Python asyncio clients (install wrk for figures the load generator does not cap)"
    )
    print(f"## (c) batching, (d) ANN, (e) naive baseline: HTTP, {clients} concurrent clients ({generator})")
    print("| model | server | req/s | p50 (ms) | p99 (ms) |")
    print("|---|---|---|---|---|")
    for model in MODELS:
        for name in (model, f"{model}-ann"):
            for runtime in ("torch", "onnx"):
                for batch in (1, 32):
                    r = http[(name, runtime, batch)]
                    label = f"firstspike {runtime}, " + (
                        "batch size 1" if batch == 1 else "dynamic batching (32)"
                    )
                    print(f"| {name} | {label} | {r.throughput:.1f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} |")
        r = http[(model, "naive", 1)]
        print(
            f"| {model} | naive FastAPI + torch, all T, mean output | {r.throughput:.1f} | "
            f"{r.p50_ms:.2f} | {r.p99_ms:.2f} |"
        )
    print()
    print("## Ratios")
    print(
        "| model | batching / batch 1 (onnx) | batching / batch 1 (torch) | best firstspike / naive | "
        "SNN onnx 1-client p50 / ANN onnx |"
    )
    print("|---|---|---|---|---|")
    for model in MODELS:
        onnx_gain = http[(model, "onnx", 32)].throughput / http[(model, "onnx", 1)].throughput
        torch_gain = http[(model, "torch", 32)].throughput / http[(model, "torch", 1)].throughput
        best = max(
            http[(model, runtime, batch)].throughput for runtime in ("torch", "onnx") for batch in (1, 32)
        )
        naive = http[(model, "naive", 1)].throughput
        latency = http[(model, "onnx", "single")].p50_ms / http[(f"{model}-ann", "onnx", "single")].p50_ms
        print(f"| {model} | {onnx_gain:.2f}x | {torch_gain:.2f}x | {best / naive:.2f}x | {latency:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
