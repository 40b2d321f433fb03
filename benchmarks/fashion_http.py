"""The shipped fashion-mnist model over real HTTP on all 10,000 test images, against
``firstspike eval``'s answers image by image.

    python -m benchmarks.fashion_http [--runtime onnx|torch] [--no-photos] [--json FILE]

Prints, as JSON lines: the eval's accuracy and the mean decision timestep of its right and
wrong answers; then per input form (28 px PNG; 112 px RGB JPEG product photos on black and on
white) the accuracy and mean decision timestep over HTTP, and for the PNGs how many answers have
the eval's class and decision timestep. Everything runs on 127.0.0.1, two clients at a time.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from benchmarks.common import ROOT, png, post_all, start_service
from training.data import load_dataset
from training.data.fashion_mnist import fashion_mnist_split
from training.evaluate import evaluate
from training.robustness.input_forms import PRODUCT_PHOTO_FORMS
from training.store.load import load_network


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", default="auto", help="the server's FIRSTSPIKE_RUNTIME")
    parser.add_argument("--no-photos", action="store_true", help="only the 28 px PNGs")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)

    pixels, labels = fashion_mnist_split("test")
    labels = labels.tolist()
    network, manifest = load_network(ROOT / "model_store" / "fashion-mnist")
    reference = evaluate(network, load_dataset("fashion-mnist", "test")).per_sample
    right = [t for t, c, y in zip(reference["decision_timestep"], reference["class_index"], labels) if c == y]
    wrong = [t for t, c, y in zip(reference["decision_timestep"], reference["class_index"], labels) if c != y]
    figures = {
        "version": manifest.version,
        "eval_accuracy": len(right) / len(labels),
        "right": [len(right), float(np.mean(right))],
        "wrong": [len(wrong), float(np.mean(wrong))],
    }
    print(json.dumps(figures), flush=True)
    forms = [("28 px png", "image/png", png)]
    if not args.no_photos:
        forms += [(form.name, "image/jpeg", form.encode) for form in PRODUCT_PHOTO_FORMS]
    server = start_service(ROOT / "model_store", env={"FIRSTSPIKE_RUNTIME": args.runtime})
    try:
        for name, content_type, encode in forms:
            requests = [({"model": "fashion-mnist"}, encode(image), content_type) for image in pixels]
            answers = post_all(server.url, "/classify", requests, clients=2)
            classes = [answer["class_index"] for answer in answers]
            row = {
                "form": name,
                "accuracy": float(np.mean([c == y for c, y in zip(classes, labels)])),
                "mean_decision_timestep": float(np.mean([answer["decision_timestep"] for answer in answers])),
            }
            if content_type == "image/png":
                row["same_class_as_eval"] = sum(c == r for c, r in zip(classes, reference["class_index"]))
                row["same_timestep_as_eval"] = sum(
                    answer["decision_timestep"] == r
                    for answer, r in zip(answers, reference["decision_timestep"])
                )
                row["first_label"] = answers[0]["label"]
            figures[name] = row
            print(json.dumps(row), flush=True)
    finally:
        server.stop()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
