"""Your own images end to end, as a user goes about it: a folder of class folders written here
(mixed formats, sizes and modes, junk beside the images), ``firstspike train --data``, ``export``,
a real server answering with the folder names on ``/classify`` and OIP, and ``firstspike eval
--data`` on held-out files in another camera's format."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.datasets import load_digits

from benchmarks.hostile import oip_binary_body
from tests.helpers import firstspike, start_server, stop_server
from training.data.image_folder import RECIPE_LR
from training.trainer import PRETRAINING_DIR

pytestmark = pytest.mark.slow

CLASSES = {3: "three", 5: "five", 7: "seven"}
TRAIN_PER_CLASS = 45
HELD_OUT_PER_CLASS = 12
# (Pillow format, file suffix, mode): every format a user's folder is likely to mix
FORMATS = [
    ("PNG", "png", "L"),
    ("JPEG", "jpg", "RGB"),
    ("WEBP", "webp", "RGB"),
    ("BMP", "bmp", "L"),
    ("TIFF", "tif", "L"),
    ("GIF", "gif", "P"),
]
SIDES = (16, 20, 24, 28, 32)


def _picture(pixels: np.ndarray, side: int, mode: str) -> Image.Image:
    """A digit (8 x 8, 0..16) as a picture of ``side`` pixels in ``mode``."""
    grey = Image.fromarray((pixels * 15.9).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    return grey.convert(mode)


def _encode(image: Image.Image, form: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, form)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """``train``: three class folders of digits in six formats and five sizes, with a hidden
    file, a text file and a truncated PNG among them; ``held_out``: other digits of the same
    classes as 40 x 40 colour JPEGs."""
    root = tmp_path_factory.mktemp("folders")
    digits = load_digits()
    for digit, name in CLASSES.items():
        indices = np.flatnonzero(digits.target == digit)
        train_dir, held_dir = root / "train" / name, root / "held_out" / name
        train_dir.mkdir(parents=True)
        held_dir.mkdir(parents=True)
        for number, index in enumerate(indices[:TRAIN_PER_CLASS]):
            form, suffix, mode = FORMATS[number % len(FORMATS)]
            picture = _picture(digits.images[index], SIDES[number % len(SIDES)], mode)
            (train_dir / f"{index}.{suffix}").write_bytes(_encode(picture, form))
        for index in indices[TRAIN_PER_CLASS : TRAIN_PER_CLASS + HELD_OUT_PER_CLASS]:
            picture = _picture(digits.images[index], 40, "RGB")
            (held_dir / f"{index}.jpg").write_bytes(_encode(picture, "JPEG"))
    (root / "train" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train" / "three" / "notes.txt").write_text("taken on the conveyor, Tuesday\n")
    whole = _encode(_picture(digits.images[0], 24, "L"), "PNG")
    (root / "train" / "five" / "broken.png").write_bytes(whole[: len(whole) // 2])
    return {"train": root / "train", "held_out": root / "held_out", "root": root}


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory) -> dict[str, str]:
    """A cache folder of this module's own, so that its first run finds nothing known."""
    return {"XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def trained(folders, cache_env, tmp_path_factory):
    """``firstspike train --data`` with the default recipe, shortened to six epochs, then the
    same command again over the same folder (the cache's second run)."""
    run = tmp_path_factory.mktemp("run")
    args = ("train", "--data", str(folders["train"]), "--out", str(run), "--input-size", "16")
    args += ("--set", "epochs=6", "--set", "eval_every=1", "--set", "workers=0")
    first = firstspike(*args, env=cache_env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = firstspike(
        *args, "--set", "epochs=1", "--out", str(tmp_path_factory.mktemp("again")), env=cache_env
    )
    assert second.returncode == 0, second.stderr[-3000:]
    return run, first, second


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    run, _, _ = trained
    store = tmp_path_factory.mktemp("store")
    result = firstspike("export", str(run), "--store", str(store), "--name", "parts", "--onnx")
    assert result.returncode == 0, result.stderr[-3000:]
    return store


def test_the_scan_is_printed_and_names_what_it_skipped(trained):
    _, first, _ = trained
    scan = first.stderr
    assert "3 classes" in scan and "validation: 10% of each class (seed 0)" in scan
    assert "five/broken.png" in scan and "three/notes.txt" in scan and ".DS_Store: hidden" in scan
    for form in ("BMP", "GIF", "JPEG", "PNG", "TIFF", "WEBP"):
        assert form in scan
    assert "width 16..32" in scan


def test_the_second_run_decodes_nothing_again(trained):
    _, first, second = trained
    usable = len(CLASSES) * TRAIN_PER_CLASS
    # broken.png and notes.txt are looked up too: what fails to decode is not cached
    assert f": 0 of {usable + 2} files known from before" in first.stderr
    assert f": {usable} of {usable + 2} files known from before" in second.stderr


def test_the_run_records_a_recipe_that_repeats_it(trained, folders):
    run, first, _ = trained
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["dataset"] == "image-folder" and config["data_root"] == str(folders["train"].resolve())
    assert config["network"]["input_shape"] == [1, 16, 16]  # every image grey, --input-size 16
    assert config["network"]["num_classes"] == 3 and config["network"]["timesteps"] == 4
    assert config["loss"]["name"] == "tad" and config["network"]["encoder"] == "le"
    assert config["epochs"] == 6 and config["seed"] == 0 and config["max_mean_timestep"] == 1.5
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 6 and all("val_accuracy" in row and "test_accuracy" not in row for row in history)
    assert json.loads(first.stdout.strip().splitlines()[-1])["epoch"] == 6
    # the spiking net started from its ANN twin, trained first for three times its epochs
    assert config["ann_pretraining"] == {"epochs_factor": 3, "lr": RECIPE_LR}
    assert "ANN pretraining: 18 epochs" in first.stdout
    twin_history = json.loads((run / PRETRAINING_DIR / "history.json").read_text())
    assert len(twin_history) == 18 and all(row["val_accuracy"] is not None for row in twin_history)


def test_the_kept_weights_are_the_best_on_validation_and_calibrated(trained):
    run, _, _ = trained
    payload = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    history = payload["history"]
    best = max(range(len(history)), key=lambda i: (history[i]["val_accuracy"], -i))
    assert payload["best"]["epoch"] == best + 1
    assert payload["best"]["accuracy"] == history[best]["val_accuracy"]
    calibration = payload["calibration"]
    assert calibration["split"] == "val" and calibration["max_mean_timestep"] == 1.5
    assert calibration["mean_decision_timestep"] <= 1.5


def test_export_serve_and_answer_with_the_folder_names(exported, folders, tmp_path):
    manifest = json.loads((exported / "parts" / "1" / "manifest.json").read_text())
    assert manifest["labels"] == sorted(CLASSES.values())
    assert manifest["evaluation"]["split"] == "val" and manifest["evaluation"]["dataset"] == "image-folder"
    assert manifest["training"]["calibration"]["max_mean_timestep"] == 1.5
    server = start_server(tmp_path, store=exported)
    try:
        models = httpx.get(server.url + "/models", timeout=10).json()
        listed = models["models"] if isinstance(models, dict) else models
        assert "parts" in json.dumps(listed)
        files = sorted(folders["held_out"].rglob("*.jpg"))
        answers = []
        for path in files:
            response = httpx.post(
                server.url + "/classify",
                params={"model": "parts"},
                files={"image": (path.name, path.read_bytes(), "image/jpeg")},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert {answer["label"] for answer in answers} <= set(CLASSES.values())
        assert all(answer["label"] == manifest["labels"][answer["class_index"]] for answer in answers)
        right = sum(answer["label"] == path.parent.name for answer, path in zip(answers, files, strict=True))
        assert right / len(files) > 0.5  # three classes: chance is a third
        body, headers = oip_binary_body([path.read_bytes() for path in files])
        response = httpx.post(
            server.url + "/v2/models/parts/infer", content=body, headers=headers, timeout=60
        )
        assert response.status_code == 200, response.text
        outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
        assert outputs["label"] == [answer["label"] for answer in answers]
        assert outputs["class_index"] == [answer["class_index"] for answer in answers]
    finally:
        stop_server(server)


def test_eval_on_a_held_out_folder(exported, folders):
    result = firstspike("eval", str(exported / "parts"), "--data", str(folders["held_out"]), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    held_out = len(CLASSES) * HELD_OUT_PER_CLASS
    assert report["split"] == "all" and report["result"]["samples"] == held_out
    assert report["per_class_images"] == dict.fromkeys(sorted(CLASSES.values()), HELD_OUT_PER_CLASS)
    confusion = np.array(report["confusion"])
    assert confusion.sum() == held_out
    assert np.trace(confusion) / held_out == pytest.approx(report["result"]["accuracy"])
    for index, label in enumerate(report["labels"]):
        assert report["per_class_accuracy"][label] == pytest.approx(
            confusion[index, index] / confusion[index].sum()
        )
        assert sum(report["decision_timesteps_per_class"][label].values()) == HELD_OUT_PER_CLASS
    assert sum(report["decision_timesteps"].values()) == held_out
    unsure = report["least_confident"]
    assert len(unsure) == 20
    assert [item["confidence"] for item in unsure] == sorted(item["confidence"] for item in unsure)
    for item in unsure:
        assert (folders["held_out"] / item["path"]).is_file() and item["label"] == Path(
            item["path"]
        ).parent.name
    text = firstspike("eval", str(exported / "parts"), "--data", str(folders["held_out"]))
    assert text.returncode == 0 and "least confident 20" in text.stdout and "confusion" in text.stdout


def test_explicit_splits_report_on_test(folders, cache_env, tmp_path):
    """train/, val/ and test/ given: validation is val/, the export reports on test/."""
    root = tmp_path / "split"
    for split, source in (("train", "train"), ("val", "held_out"), ("test", "held_out")):
        for name in CLASSES.values():
            target = root / split / name
            target.mkdir(parents=True)
            for path in sorted((folders[source] / name).iterdir()):
                if path.suffix in (".png", ".jpg") and path.name != "broken.png":
                    target.joinpath(path.name).write_bytes(path.read_bytes())
    run, store = tmp_path / "run", tmp_path / "store"
    args = ("--set", "epochs=1", "--set", "workers=0", "--input-size", "16", "--quiet")
    trained = firstspike("train", "--data", str(root), "--out", str(run), *args, env=cache_env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "val_accuracy" in trained.stdout
    exported = firstspike("export", str(run), "--store", str(store), "--name", "split")
    assert exported.returncode == 0, exported.stderr[-3000:]
    evaluation = json.loads((store / "split" / "1" / "manifest.json").read_text())["evaluation"]
    assert evaluation["split"] == "test" and evaluation["samples"] == len(CLASSES) * HELD_OUT_PER_CLASS


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (None, "does not exist"),
        ({"only": 6}, "has one class ('only'); a classifier needs at least two"),
        ({"a": 6, "empty": 0}, "class 'empty' has no usable images"),
        ({"a": 6, "few": 2}, "class 'few' has 2 usable images; each class needs at least 5"),
    ],
)
def test_folders_that_cannot_train_get_one_line(tmp_path, cache_env, layout, message):
    root = tmp_path / "images"
    for name, count in (layout or {}).items():
        (root / name).mkdir(parents=True)
        for number in range(count):
            (root / name / f"{number}.png").write_bytes(_encode(Image.new("L", (12, 12), number * 20), "PNG"))
    result = firstspike("train", "--data", str(root), "--out", str(tmp_path / "run"), env=cache_env)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()  # nothing written for a folder refused
