"""Robustness over HTTP: versions of a model side by side on inputs as users send them.

    python -m benchmarks.robustness                       # every stored version of digits, digits-dvs
    python -m benchmarks.robustness --versions 1,2 --limit 100 --no-corruptions
    python -m benchmarks.robustness --model fashion-mnist --limit 1000 --no-events

One real server on 127.0.0.1 serves the model store; every answer comes from ``POST /classify``
or ``POST /classify/stream`` with ``?model=...&version=...``, so each version runs with its own
manifest (its own resize policy). Reported:

- the image model's accuracy on its data set's test images (digits or fashion-mnist, from the
  manifest) in every input form: sizes 8, 16, 28, 64 and 200 px, grey and RGB, PNG and JPEG at
  quality 50 and 90 (made by smooth upscaling), 64 px inverted onto a white background, plus for
  digits the issue's acceptance forms (32 px JPEG, 200 px JPEG made by nearest-neighbour
  upscaling) and digits typed in a font (not handwriting at all), for fashion-mnist 112 px RGB
  JPEG product photos on black and on white;
- its error per corruption and severity (the 15 corruptions of ``training.robustness`` applied
  to the test images at their own size, sent as PNG), and the mean over all 75;
- the event model's accuracy, mean decision timestep and share of streams decided before they
  end, on the ``test`` and ``other-cameras`` splits.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ROOT, png, post_all, start_service, versions_to_compare
from training.contract.manifest import read_manifest, resolve_version_dir
from training.data.digits import digit_to_png_pixels, digits_split
from training.robustness import CORRUPTIONS, corrupt
from training.robustness.input_forms import (
    ACCEPTANCE_FORMS,
    PRODUCT_PHOTO_FORMS,
    InputForm,
    standard_forms,
    typed_digits,
)


def held_out_pixels(model_dir: Path) -> tuple[str, np.ndarray, list[int]]:
    """The test split of the model's data set as 8-bit grey pixels [N, H, W], light on dark."""
    dataset = read_manifest(resolve_version_dir(model_dir)).evaluation.dataset
    if dataset == "digits":
        images, labels = digits_split("test")
        return dataset, digit_to_png_pixels(images), [int(label) for label in labels]
    if dataset == "fashion-mnist":
        from training.data.fashion_mnist import fashion_mnist_split

        pixels, labels = fashion_mnist_split("test")
        return dataset, pixels, labels.tolist()
    raise ValueError(f"the robustness benchmark has no test images for {dataset!r} (digits, fashion-mnist)")


def extra_forms(dataset: str) -> list[InputForm]:
    """Beyond the standard sizes and encodings: what users of this data set's model send."""
    forms = [InputForm(64, "rgb", "png", background="white")]
    if dataset == "digits":
        forms += ACCEPTANCE_FORMS
    if dataset == "fashion-mnist":
        forms += PRODUCT_PHOTO_FORMS
    return forms


@dataclass
class Scored:
    """Accuracy and mean decision timestep of a set of answers."""

    accuracy: float
    mean_decision_timestep: float


def score(answers: list[dict[str, Any]], labels: list[int]) -> Scored:
    """The answers' accuracy against ``labels`` and their mean decision timestep."""
    correct = [answer["class_index"] == label for answer, label in zip(answers, labels)]
    return Scored(
        float(np.mean(correct)), float(np.mean([answer["decision_timestep"] for answer in answers]))
    )


def classify_images(
    url: str, model: str, version: int, files: list[bytes], content_type: str, clients: int
) -> list[dict[str, Any]]:
    """``files`` POSTed to /classify for one version of ``model``; the answers in order."""
    params = {"model": model, "version": str(version)}
    return post_all(url, "/classify", [(params, body, content_type) for body in files], clients)


def image_forms(
    url: str,
    model: str,
    versions: list[int],
    pixels: np.ndarray,
    labels: list[int],
    clients: int,
    dataset: str,
) -> list[dict[str | int, Any]]:
    """Per input form, a row of its name (``form``) and the accuracy of each version."""
    rows: list[dict[str | int, Any]] = []
    standard = standard_forms(pixels.shape[1])
    forms = standard + [form for form in extra_forms(dataset) if form not in standard]
    for form in forms:
        files = [form.encode(image) for image in pixels]
        content_type = "image/jpeg" if form.format == "jpeg" else "image/png"
        row: dict[str | int, Any] = {"form": form.name}
        for version in versions:
            row[version] = score(
                classify_images(url, model, version, files, content_type, clients), labels
            ).accuracy
        rows.append(row)
        print(f"  {form.name:32s} " + "  ".join(f"v{v} {row[v]:.4f}" for v in versions), file=sys.stderr)
    if dataset == "digits":  # also digits that no one wrote by hand
        for black_on_white in (False, True):
            files, typed_labels = typed_digits(black_on_white=black_on_white)
            colours = "black on white" if black_on_white else "white on black"
            rows.append(
                {
                    "form": f"typed digits (font, {colours}), 200 px grey jpeg q75",
                    **{
                        version: score(
                            classify_images(url, model, version, files, "image/jpeg", clients), typed_labels
                        ).accuracy
                        for version in versions
                    },
                }
            )
    return rows


def image_corruptions(
    url: str, model: str, versions: list[int], pixels: np.ndarray, labels: list[int], clients: int, seed: int
) -> dict[int, dict[str, Any]]:
    """Per version, the error per corruption and severity 1 to 5, and their mean."""
    errors: dict[int, dict[str, list[float]]] = {version: {} for version in versions}
    for corruption in CORRUPTIONS:
        for severity in range(1, 6):
            files = [
                png(corrupt(image, corruption, severity, seed + index).reshape(image.shape))
                for index, image in enumerate(pixels)
            ]
            for version in versions:
                accuracy = score(
                    classify_images(url, model, version, files, "image/png", clients), labels
                ).accuracy
                errors[version].setdefault(corruption, []).append(1.0 - accuracy)
        print(
            f"  {corruption:20s} "
            + "  ".join(f"v{v} {np.mean(errors[v][corruption]):.3f}" for v in versions),
            file=sys.stderr,
        )
    return {
        version: {
            "per_corruption": per,
            "mean_error": float(np.mean([e for values in per.values() for e in values])),
        }
        for version, per in errors.items()
    }


def event_splits(
    url: str, model: str, versions: list[int], splits: list[str], limit: int | None, clients: int
) -> list[dict[str, Any]]:
    """Per split and version of the event model: accuracy, mean decision timestep and the share
    of streams decided before they end."""
    from training.contract.events.format import encode
    from training.data.digits_dvs import BIN_US, SENSOR, digits_dvs_split

    rows = []
    for split in splits:
        streams, split_labels = digits_dvs_split(split)
        streams, labels = streams[:limit], [int(label) for label in split_labels[:limit]]
        bodies = [encode(stream) for stream in streams]
        durations = [int(stream["t"][-1] - stream["t"][0]) for stream in streams]
        for version in versions:
            params = {"model": model, "version": str(version), "width": str(SENSOR), "height": str(SENSOR)}
            answers = post_all(
                url,
                "/classify/stream",
                [(params, body, "application/x-dvs-events") for body in bodies],
                clients,
            )
            scored = score(answers, labels)
            # Bin k closes when an event at or past k bins arrives: before the end iff it fits the stream.
            early = np.mean([a["decision_timestep"] * BIN_US <= d for a, d in zip(answers, durations)])
            rows.append(
                {
                    "split": split,
                    "version": version,
                    "accuracy": scored.accuracy,
                    "mean_decision_timestep": scored.mean_decision_timestep,
                    "decided_before_end": float(early),
                    "streams": len(streams),
                }
            )
            print(f"  {split:14s} v{version} accuracy {scored.accuracy:.4f}", file=sys.stderr)
    return rows


def markdown(results: dict[str, Any], versions: list[int], event_versions: list[int]) -> str:
    """The tables of ``results`` (input forms, corruptions, event streams) in Markdown."""
    lines = []
    if "forms" in results:
        lines += [
            "| input form | " + " | ".join(f"v{v}" for v in versions) + " |",
            "|---|" + "---|" * len(versions),
        ]
        lines += [
            f"| {row['form']} | " + " | ".join(f"{100 * row[v]:.1f}%" for v in versions) + " |"
            for row in results["forms"]
        ]
        lines.append("")
    if "corruptions" in results:
        table = results["corruptions"]
        header = " | ".join(f"v{v} s{s}" for v in versions for s in range(1, 6))
        lines += [f"| error (%) | {header} |", "|---|" + "---|" * (5 * len(versions))]
        for corruption in CORRUPTIONS:
            cells = " | ".join(
                f"{100 * e:.1f}" for v in versions for e in table[v]["per_corruption"][corruption]
            )
            lines.append(f"| {corruption} | {cells} |")
        lines.append(
            "| **mean of 75** | "
            + " | ".join(
                (f"**{100 * table[v]['mean_error']:.1f}**" if s == 1 else "")
                for v in versions
                for s in range(1, 6)
            )
            + " |"
        )
        lines.append("")
    if "events" in results:
        lines += [
            "| split | version | accuracy | mean decision timestep | decided before the stream ends |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['split']} | v{row['version']} | {100 * row['accuracy']:.1f}% | "
            f"{row['mean_decision_timestep']:.2f} | {100 * row['decided_before_end']:.1f}% |"
            for row in results["events"]
        ]
    return "\n".join(lines)


PAGE = """# Robustness: inputs as users send them

Made by `{command}` on one 2-core CPU machine: one real server on 127.0.0.1, every answer over
HTTP, each version with its own manifest (its own resize policy). {samples} test images per
image row; the 15 corruptions of `training/robustness/corruptions.py` (held out: training never
uses them) on the test images at their own size, sent as PNG. {about}

{tables}
"""

ABOUT = {
    "digits": """`{model}` v1 bilinear-stretches other sizes;
v2 area-averages, letterboxes and frames files of other sizes as the digits were framed, and
was trained on user-like inputs. `{events_model}` v1 saw the nominal camera alone; v2 and v3
were trained on streams from randomised cameras, v3 with a wider network and output neurons
that integrate without leak up to a threshold of 4, so that an uncertain stream waits for more
evidence. `other-cameras` streams come from camera settings outside the training ranges.""",
    "fashion-mnist": """`{model}` frames files of other sizes to their content, turns
light-background photos to Fashion-MNIST's light-on-dark and was trained on user-like inputs
(milder than digits': the classes differ in details that strong blur would erase).""",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=str(ROOT / "model_store"))
    parser.add_argument("--model", default="digits")
    parser.add_argument(
        "--versions", help="image model versions to compare, e.g. 1,2 (default: all in the store)"
    )
    parser.add_argument("--events-model", default="digits-dvs")
    parser.add_argument("--event-versions", help="event model versions (default: all in the store)")
    parser.add_argument("--limit", type=int, help="use only the first N test samples")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--seed", type=int, default=0, help="seed of the corruptions")
    parser.add_argument("--no-corruptions", action="store_true")
    parser.add_argument("--no-events", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--page", help="also write the tables as a markdown page (docs/robustness.md)")
    args = parser.parse_args(argv)
    store = Path(args.store) if args.store.startswith("/") else ROOT / args.store
    versions = versions_to_compare(args.versions, store / args.model)
    event_versions = versions_to_compare(args.event_versions, store / args.events_model)
    dataset, pixels, labels = held_out_pixels(store / args.model)
    pixels, labels = pixels[: args.limit], labels[: args.limit]
    server = start_service(store)
    results: dict[str, Any] = {}
    try:
        print(f"{args.model}: input forms", file=sys.stderr)
        results["forms"] = image_forms(
            server.url, args.model, versions, pixels, labels, args.clients, dataset
        )
        if not args.no_corruptions:
            print(f"{args.model}: corruptions", file=sys.stderr)
            results["corruptions"] = image_corruptions(
                server.url, args.model, versions, pixels, labels, args.clients, args.seed
            )
        if not args.no_events:
            print(f"{args.events_model}: event streams", file=sys.stderr)
            results["events"] = event_splits(
                server.url,
                args.events_model,
                event_versions,
                ["test", "other-cameras"],
                args.limit,
                args.clients,
            )
    finally:
        server.stop()
    tables = markdown(results, versions, event_versions)
    print(tables)
    if args.page:
        command = "python -m benchmarks.robustness " + " ".join(argv if argv is not None else sys.argv[1:])
        with open(args.page, "w") as handle:
            about = ABOUT.get(dataset, "").format(model=args.model, events_model=args.events_model)
            handle.write(
                PAGE.format(command=command.strip(), samples=len(labels), about=about, tables=tables)
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
