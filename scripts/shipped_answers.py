"""Every shipped version's answers over HTTP, to show that a change kept them.

    python scripts/shipped_answers.py record answers.json            # every version, both runtimes
    python scripts/shipped_answers.py compare before.json after.json

``record`` starts a real server on the model store and sends every test input of each version's
data set (images as PNG to ``POST /classify``, event streams to ``POST /classify/stream``), once
with the torch runtime and once with ``auto`` (onnx where the version has ONNX graphs). It keeps
each answer's class and decision timestep. ``compare`` prints how many answers differ per
version and runtime, and exits non-zero if any does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# A script of the source tree: benchmarks/ is importable from the checkout's root only.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, png, post_all, start_service  # noqa: E402
from training.contract.manifest import Manifest, discover, read_manifest  # noqa: E402


def _test_requests(manifest: Manifest) -> list[tuple[dict[str, str], bytes, str]]:
    dataset = manifest.evaluation.dataset
    if dataset == "digits":
        from training.data.digits import digit_to_png_pixels, digits_split

        images, _ = digits_split("test")
        return [({}, png(digit_to_png_pixels(image)), "image/png") for image in images]
    if dataset == "fashion-mnist":
        from training.data.fashion_mnist import fashion_mnist_split

        images, _ = fashion_mnist_split("test")
        return [({}, png(image), "image/png") for image in images]
    if dataset == "digits-dvs":
        from training.contract.events.format import encode
        from training.data.digits_dvs import SENSOR, digits_dvs_split

        streams, _ = digits_dvs_split("test")
        size = {"width": str(SENSOR), "height": str(SENSOR)}
        return [(size, encode(stream), "application/x-dvs-events") for stream in streams]
    raise SystemExit(f"shipped_answers: no test inputs for data set {dataset!r}")


def record(store: Path, out: Path) -> None:
    answers: dict[str, dict[str, list[list[int]]]] = {}
    for runtime in ("torch", "auto"):
        server = start_service(store, {"FIRSTSPIKE_RUNTIME": runtime})
        try:
            for name, versions in sorted(discover(store).items()):
                for version in versions:
                    manifest = read_manifest(store / name / str(version))
                    requests = [
                        ({**params, "model": name, "version": str(version)}, body, kind)
                        for params, body, kind in _test_requests(manifest)
                    ]
                    path = "/classify/stream" if manifest.kind == "events" else "/classify"
                    replies = post_all(server.url, path, requests, clients=4)
                    answers.setdefault(f"{name}/{version}", {})[runtime] = [
                        [reply["class_index"], reply["decision_timestep"]] for reply in replies
                    ]
                    print(f"{name}/{version} {runtime}: {len(replies)} answers", file=sys.stderr)
        finally:
            server.stop()
    out.write_text(json.dumps(answers))


def compare(before: Path, after: Path) -> int:
    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    differing = 0
    for version in sorted(set(old) | set(new)):
        for runtime in sorted(set(old.get(version, {})) | set(new.get(version, {}))):
            a, b = old.get(version, {}).get(runtime), new.get(version, {}).get(runtime)
            if a is None or b is None or len(a) != len(b):
                print(f"{version} {runtime}: only in one recording")
                differing += 1
                continue
            changed = sum(x != y for x, y in zip(a, b))
            differing += changed
            print(f"{version} {runtime}: {len(a)} inputs, {changed} answers differ")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    recording = commands.add_parser("record")
    recording.add_argument("out", type=Path)
    recording.add_argument("--model-store", type=Path, default=ROOT / "model_store")
    comparing = commands.add_parser("compare")
    comparing.add_argument("before", type=Path)
    comparing.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "compare":
        return compare(args.before, args.after)
    record(args.model_store, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
