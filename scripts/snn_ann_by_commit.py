"""SNN / ANN at batch size 1, in process, at each of several commits: each change's share.

    python scripts/snn_ann_by_commit.py 98b07c4 355fc17 HEAD [--seconds 6]

For every commit it checks out a worktree (in a temporary folder), and runs there, with that
commit's own exporter, runtime and early-exit loop, what ``benchmarks.comparison
--quick --json`` measures in process: the shipped digits and fashion-mnist weights and a VGG-11,
each against its ANN twin (onnx runtime, one thread, inputs the SNN decides at timestep 1),
interleaved in rounds, each side taking turns among three loads of its model. Prints one JSON
line per commit: the median ratio and its quartiles per model. The commits run one after the
other, so keep the machine quiet while it runs. The measurement is written out here rather than
imported, so that it runs the same at commits older than its helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]

# Runs inside a worktree; uses only what every measured commit has.
MEASURE = """
import io, itertools, json, statistics, sys, tempfile
from pathlib import Path
import torch
from PIL import Image
from benchmarks.comparison import MODELS, build_store, model_inputs
from benchmarks.profile import interleaved_ratio
try:
    from benchmarks.comparison import load_served
except ImportError:  # commits older than the public name call it _runtime
    from benchmarks.comparison import _runtime as load_served
from service.inference.early_exit import classify
from service.inference.runtimes.onnx_runtime import OnnxRuntime
from training.contract.images.model_input import to_model_input

LOADS, ROUND = 3, 10  # as the comparison: each side takes turns among three loads, one per round


def turns(runtimes, images):
    images = itertools.cycle(images)
    for runtime in itertools.cycle(runtimes):
        for _ in range(ROUND):
            yield runtime, next(images)


torch.set_num_threads(1)
seconds = float(sys.argv[1])
result = {}
with tempfile.TemporaryDirectory() as tmp:
    store = build_store(Path(tmp))
    inputs = model_inputs(store, 256)
    for model in MODELS:
        snns = [load_served(store, model, OnnxRuntime) for _ in range(LOADS)]
        anns = [load_served(store, f"{model}-ann", OnnxRuntime) for _ in range(LOADS)]
        (snn, widths, spec, decoding), (_, ann_widths, _, ann_decoding) = snns[0], anns[0]
        images = [to_model_input(Image.open(io.BytesIO(body)), spec)[None] for body in inputs[model][:64]]
        first = [image for image in images if classify(snn, image, widths)[0].decision_timestep == 1]
        snn_calls = turns([s.runtime for s in snns], first)
        ann_calls = turns([a.runtime for a in anns], first)
        ratio, rounds = interleaved_ratio(
            lambda: classify(*next(snn_calls), widths, decoding=decoding),
            lambda: classify(*next(ann_calls), ann_widths, decoding=ann_decoding),
            seconds,
            ROUND,
        )
        quartiles = statistics.quantiles(rounds, n=4)
        result[model] = [round(ratio, 3), round(quartiles[0], 3), round(quartiles[2], 3)]
print(json.dumps(result))
"""


def measure(commit: str, seconds: float, scratch: Path) -> dict[str, Any]:
    """Run ``MEASURE`` in a worktree of ``commit``: per model, [median ratio, lower and upper
    quartile of the rounds' ratios]."""
    worktree = scratch / commit
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(worktree), commit], cwd=ROOT, check=True
    )
    try:
        completed = subprocess.run(
            [sys.executable, "-c", MEASURE, str(seconds)],
            cwd=worktree,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONPATH": str(worktree), "OMP_NUM_THREADS": "1"},
        )
        if completed.returncode != 0:
            raise SystemExit(
                f"snn_ann_by_commit: {commit} failed: {completed.stderr.strip().splitlines()[-1]}"
            )
        result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
        return result
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+", help="commits to measure, in order")
    parser.add_argument("--seconds", type=float, default=6.0, help="interleaved seconds per model")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="snn-ann-") as scratch:
        for commit in args.commits:
            print(json.dumps({"commit": commit, **measure(commit, args.seconds, Path(scratch))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
