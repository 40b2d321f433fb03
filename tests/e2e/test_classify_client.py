"""``firstspike-classify``, the command-line client, as users run it: a subprocess posting files
and folders to a real server, its table and ``--json`` lines checked against the answers the same
bytes get when posted with httpx, and its one-line errors."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port

# Relative to the folder the client runs in: the paths it prints are the ones it was given.
FOLDER_FILES = [
    "images/digit-0.png",
    "images/digit-1.png",
    "images/digit-2.png",
    "images/sub/digit-3.png",
    "images/sub/digit-4.png",
    "images/sub/photo.jpg",
]


def _client(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The client as users run it: the console script, else ``python -m service.client``."""
    script = Path(sys.executable).with_name("firstspike-classify")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "service.client"]
    environment = {key: value for key, value in os.environ.items() if key != "FIRSTSPIKE_URL"}
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _jpeg(png: bytes) -> bytes:
    """The PNG as a larger RGB JPEG, as a phone or a scanner would send it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").resize((64, 64)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def images(tmp_path, digits_test_pngs) -> Path:
    """``tmp_path/images``: five digits and a JPEG in a folder and its sub-folder, beside files a
    folder scan leaves out (a text file, a hidden ``._`` file)."""
    pngs, _ = digits_test_pngs
    for index, name in enumerate(FOLDER_FILES[:5]):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(pngs[index])
    (tmp_path / FOLDER_FILES[5]).write_bytes(_jpeg(pngs[5]))
    (tmp_path / "images" / "readme.txt").write_text("not posted: not an image file")
    (tmp_path / "images" / "sub" / "._digit-3.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble, no image")
    return tmp_path


def _expected(server, root: Path, names: list[str], **params) -> list[dict]:
    """The server's answers to the same bytes posted with httpx."""
    content_types = {".png": "image/png", ".jpg": "image/jpeg"}
    with server.client() as client:
        answers = []
        for name in names:
            path = root / name
            headers = {"content-type": content_types[path.suffix]}
            response = client.post("/classify", content=path.read_bytes(), headers=headers, params=params)
            assert response.status_code == 200, response.text
            answers.append(response.json())
    return answers


def test_a_folder_is_classified_recursively_in_sorted_order_as_a_table(server, images):
    completed = _client("images", "--url", server.url, cwd=images)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    header, *rows = completed.stdout.splitlines()
    assert header.split() == ["file", "label", "class", "timestep", "exit", "latency", "ms"]
    expected = _expected(server, images, FOLDER_FILES)
    assert [row.split()[0] for row in rows] == FOLDER_FILES
    for row, answer in zip(rows, expected):
        _, label, class_index, timestep, exit_reason, latency_ms = row.split()
        assert (label, int(class_index)) == (answer["label"], answer["class_index"])
        assert timestep == f"{answer['decision_timestep']}/{answer['max_timesteps']}"
        assert exit_reason == answer["exit_reason"]
        assert float(latency_ms) >= 0
    # the columns line up: each row's label starts where the header's does
    assert {row.index(row.split()[1], len(row.split()[0])) for row in rows} == {header.index("label")}


def test_json_lines_with_model_and_version_from_the_environment_url(server, images):
    completed = _client(
        "images/sub",
        "images/digit-0.png",
        "--model",
        "digits",
        "--version",
        "1",
        "--json",
        cwd=images,
        env={"FIRSTSPIKE_URL": server.url},
    )
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    names = [*FOLDER_FILES[3:], "images/digit-0.png"]
    assert [line["file"] for line in lines] == names
    expected = _expected(server, images, names, model="digits", version=1)
    for line, answer in zip(lines, expected):
        assert line["model"] == {"name": "digits", "version": 1}
        assert (line["label"], line["class_index"]) == (answer["label"], answer["class_index"])
        assert line["decision_timestep"] == answer["decision_timestep"]
        assert line["spikes"] == answer["spikes"]
        assert set(line) == {"file", *answer}


def test_a_file_the_server_refuses_is_reported_and_the_others_go_on(server, images):
    (images / "images" / "sub" / "broken.png").write_text("a text file with an image's name")
    # Named one by one, a file's type comes from Pillow where the extension names none; a file
    # that neither names goes as a multipart upload, so the server says what it is.
    (images / "digit.bin").write_bytes((images / FOLDER_FILES[0]).read_bytes())
    (images / "notes.bin").write_text("no image at all")
    completed = _client("images", "digit.bin", "notes.bin", "--url", server.url, cwd=images)
    assert completed.returncode == 1
    rows = completed.stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == [*FOLDER_FILES, "digit.bin"]
    assert rows[-1].split()[1:3] == rows[0].split()[1:3]  # the same bytes, the same decision
    errors = completed.stderr.splitlines()
    assert errors[:2] == [
        f"firstspike-classify: error: {name}: the data is not an image in an accepted format "
        "(PNG, JPEG, GIF, BMP, TIFF, WEBP, PPM, TGA) (undecodable_image, HTTP 400)"
        for name in ("images/sub/broken.png", "notes.bin")
    ]
    assert errors[2:] == ["firstspike-classify: 2 of 9 files refused by the server"]
    assert "Traceback" not in completed.stderr

    completed = _client("images/sub", "--json", "--url", server.url, cwd=images)
    assert completed.returncode == 1
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    refused = [line for line in lines if line["file"] == "images/sub/broken.png"]
    assert len(lines) == 4
    assert len(refused) == 1
    assert refused[0]["status"] == 400
    assert refused[0]["code"] == "undecodable_image"
    assert set(refused[0]) == {"file", "status", "error", "code", "request_id"}


def test_an_unknown_model_is_the_servers_refusal_for_each_file(server, images):
    completed = _client("images/sub", "--model", "no-such-model", "--url", server.url, cwd=images)
    assert completed.returncode == 1
    assert completed.stdout == ""
    errors = completed.stderr.splitlines()
    assert len(errors) == 4
    assert all("(unknown_model, HTTP 404)" in line for line in errors[:3])


def test_an_unreachable_server_is_one_line_and_exit_2(images):
    url = f"http://127.0.0.1:{free_port()}"
    completed = _client("images", "--url", url, cwd=images)
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr == (
        f"firstspike-classify: error: cannot reach {url}/classify: connection refused "
        "(is the server running? firstspike serve)\n"
    )


def test_a_server_that_never_answers_times_out_in_one_line(images):
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        completed = _client("images/digit-0.png", "--url", url, "--timeout", "0.5", cwd=images)
    assert completed.returncode == 2
    assert completed.stderr == (
        f"firstspike-classify: error: no answer from {url}/classify: timed out after 0.5 s (--timeout)\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.png"], "missing.png: no such file or folder"),
        (["images", "missing"], "missing: no such file or folder"),
        (["empty"], "empty: no image files in this folder (.png, .jpg, "),
        (
            ["images", "--url", "ftp://example.org"],
            "--url 'ftp://example.org' is not an http:// or https:// URL",
        ),
    ],
)
def test_what_stops_the_run_before_any_request_is_one_line_and_exit_2(images, args, message):
    (images / "empty" / "sub").mkdir(parents=True)
    (images / "empty" / "sub" / "notes.txt").write_text("no image here")
    # Nothing listens there: the run must stop before it posts anything.
    completed = _client(*args, cwd=images, env={"FIRSTSPIKE_URL": f"http://127.0.0.1:{free_port()}"})
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.startswith(f"firstspike-classify: error: {message}")
    assert completed.stderr.count("\n") == 1


def test_the_client_needs_neither_torch_nor_httpx():
    probe = (
        "import sys, service.client; "
        "print(','.join(sorted(m for m in sys.modules if m.startswith(('torch', 'httpx', 'training.data')))))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == ""


def test_firstspike_classify_is_the_same_client(server, images):
    """``firstspike classify`` (the main command) takes the same options and answers the same."""
    script = Path(sys.executable).with_name("firstspike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "training.cli"]
    completed = subprocess.run(
        [*command, "classify", "images/digit-0.png", "--url", server.url, "--json"],
        cwd=images,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    (line,) = [json.loads(line) for line in completed.stdout.splitlines()]
    (answer,) = _expected(server, images, ["images/digit-0.png"])
    assert (line["file"], line["label"], line["class_index"]) == (
        "images/digit-0.png",
        answer["label"],
        answer["class_index"],
    )
    missing = subprocess.run(
        [*command, "classify", "no-such-file.png", "--url", server.url],
        cwd=images,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("firstspike classify: error: ") and len(missing.stderr.splitlines()) == 1
