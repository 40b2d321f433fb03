"""The client command: ``firstspike-classify FILE...``, and ``firstspike classify`` with the same
options. It posts images to a running server's ``POST /classify`` and prints the answers.

Standard library only for HTTP (``urllib.request``), so it runs in the core install, with no
torch and no test dependencies; Pillow (a core dependency) only names the format of a file whose
extension does not.

Exit status: 0 when every file was classified, 1 when the server refused one or more of them
(each named on stderr with the server's ``error`` and ``code``), 2 for what stops the whole run:
a path that does not exist, a folder with no image files, a server that cannot be reached or
does not answer like firstspike.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.cli import run_reporting_errors

PROG = "firstspike-classify"
HELP = "classify image files with a running firstspike server (POST /classify)"
DESCRIPTION = (
    "Post images to a running firstspike server's POST /classify and print its answers: a table, "
    "or one JSON object per line with --json. A folder stands for every image file in it, "
    "recursively, sorted. Exit status: 0 all classified, 1 some refused by the server, 2 nothing "
    "could be done (a missing path, no server)."
)
DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "FIRSTSPIKE_URL"

# Extension -> content type, for the formats the server decodes (docs/api.md, "Images"). A folder
# stands for the files with these extensions; the server sniffs the format from the bytes, so
# the type only has to be an image/* one.
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".dib": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
    ".ppm": "image/x-portable-pixmap",
    ".pgm": "image/x-portable-graymap",
    ".pbm": "image/x-portable-bitmap",
    ".pnm": "image/x-portable-anymap",
    ".tga": "image/x-tga",
}


class ServerUnreachable(ConnectionError):
    """The server could not be reached, or gave no answer in time: nothing more can be posted."""


@dataclass
class Answer:
    """The server's answer for one file.

    Attributes:
        status: the HTTP status.
        body: the JSON body: the decision, or the error body ``{"error", "code", "request_id"}``.
    """

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the file was classified."""
        return 200 <= self.status < 300


def add_classify_arguments(parser: argparse.ArgumentParser) -> None:
    """The client's options, on ``firstspike-classify`` or on ``firstspike``'s ``classify`` command.

    Args:
        parser: the parser to add them to.
    """
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="image files, or folders: every image file in them, recursively, sorted",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_VARIABLE) or DEFAULT_URL,
        help=f"the server's base URL ({URL_VARIABLE}, default {DEFAULT_URL})",
    )
    parser.add_argument("--model", help="model name (default: the server's first loaded image model)")
    parser.add_argument(
        "--version", type=_positive_int, metavar="N", help="model version (default: the highest loaded)"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line: the file path and the server's answer (for a refused file: "
        "its HTTP status and error body)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="give up on a server that does not connect or answer within this (default 30)",
    )
    # Messages start with the command as the user typed it: firstspike-classify or firstspike classify.
    parser.set_defaults(classify_prog=parser.prog)


def classify(args: argparse.Namespace) -> int:
    """Post each file to ``POST /classify`` and print the answers as they come.

    Args:
        args: the options of ``add_classify_arguments``.

    Returns:
        The exit status: 0 when every file was classified, 1 when the server refused any.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a folder holds no image files, the URL is not http(s), or the server's
            answer is not firstspike's JSON.
        ServerUnreachable: the server refused the connection or did not answer in time.
    """
    prog = getattr(args, "classify_prog", PROG)
    endpoint = classify_url(args.url, args.model, args.version)
    files = collect_files(args.paths)
    widths = _widths(files)
    refused = 0
    header = not args.json  # printed with the first row, so that a run that posts nothing prints none
    try:
        for path in files:
            answer = post_image(endpoint, path, args.timeout)
            if args.json:
                extra = {} if answer.ok else {"status": answer.status}
                print(json.dumps({"file": str(path), **extra, **answer.body}), flush=True)
            elif answer.ok:
                if header:
                    print(_row(_HEADER, widths))
                    header = False
                print(_row(_table_cells(path, answer.body), widths), flush=True)
            if not answer.ok:
                refused += 1
                print(f"{prog}: error: {path}: {_describe_refusal(answer)}", file=sys.stderr, flush=True)
    except BrokenPipeError:
        # The reader stopped reading (head, a pager): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    if refused:
        print(f"{prog}: {refused} of {len(files)} files refused by the server", file=sys.stderr)
        return 1
    return 0


def classify_url(base_url: str, model: str | None = None, version: int | None = None) -> str:
    """The ``/classify`` URL under a server's base URL, with the model and version asked for.

    Args:
        base_url: the server's base URL (a path under it is kept, for a server behind a proxy).
        model: the model name, or None for the server's default.
        version: the model version, or None for the highest loaded.

    Returns:
        The URL to post to.

    Raises:
        ValueError: the URL is not an http or https one with a host.
    """
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--url {base_url!r} is not an http:// or https:// URL")
    query = urllib.parse.urlencode(
        {key: value for key, value in {"model": model, "version": version}.items() if value is not None}
    )
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/classify", query, "")
    )


def collect_files(paths: Sequence[Path]) -> list[Path]:
    """The files to post: each file as given, and each folder's image files, recursively, sorted.

    Args:
        paths: files and folders.

    Returns:
        The files, in the order given (a folder's in sorted order).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a folder holds no image files.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(_image_files(path))
            if not found:
                raise ValueError(f"{path}: no image files in this folder ({', '.join(CONTENT_TYPES)})")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def _image_files(folder: Path) -> Iterator[Path]:
    """The image files under ``folder``, by extension, leaving out hidden files and folders: macOS
    writes ``._name.png`` files beside the real ones that are no images at all."""
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not hidden and path.suffix.lower() in CONTENT_TYPES and path.is_file():
            yield path


def post_image(url: str, path: Path, timeout: float) -> Answer:
    """Post one file's bytes to ``url`` and read the answer, a refusal included.

    The bytes go as the raw body with the type the extension, else Pillow, names; a file that
    neither names goes as a multipart upload, so that the server, not a guessed type, decides.

    Args:
        url: the ``/classify`` URL (``classify_url``).
        path: the file.
        timeout: seconds to wait for the connection and for each read.

    Returns:
        The status and the JSON body.

    Raises:
        ServerUnreachable: the connection failed or timed out.
        ValueError: the answer is not JSON (``url`` is not a firstspike server).
    """
    data = path.read_bytes()
    content_type = CONTENT_TYPES.get(path.suffix.lower()) or _detected_type(data)
    if content_type is None:
        data, content_type = _multipart(data, path.name)
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, _json_body(response.read(), url, response.status))
    except urllib.error.HTTPError as error:  # a 4xx or 5xx: an answer, not a failure to connect
        try:
            return Answer(error.code, _error_body(error.read(), error.code, error.reason))
        finally:
            error.close()
    except urllib.error.URLError as error:
        raise ServerUnreachable(f"cannot reach {url}: {_describe_reason(error.reason, timeout)}") from None
    except (OSError, http.client.HTTPException) as error:  # timed out or cut off while reading
        raise ServerUnreachable(f"no answer from {url}: {_describe_reason(error, timeout)}") from None


def _detected_type(data: bytes) -> str | None:
    """The image/* type of the format Pillow reads from the header, or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if found is None:
        return None
    return Image.MIME.get(found) or f"image/{found.lower()}"


def _multipart(data: bytes, name: str) -> tuple[bytes, str]:
    """A multipart body with ``data`` as the file field ``image``, and its content type."""
    boundary = uuid.uuid4().hex
    while boundary.encode() in data:
        boundary = uuid.uuid4().hex
    # The server ignores the file name; an ASCII one without quotes keeps the header well formed.
    safe_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="image"; filename="{safe_name or "image"}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _json_body(raw: bytes, url: str, status: int) -> dict[str, Any]:
    """A successful answer's JSON object."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or "class_index" not in body:
        raise ValueError(f"{url} answered {status} without firstspike's JSON: is --url a firstspike server?")
    return body


def _error_body(raw: bytes, status: int, reason: str) -> dict[str, Any]:
    """A refusal's error body; one made up from the status line when it is not JSON (a proxy's page)."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and "error" in body:
        return body
    return {"error": f"HTTP {status} {reason}".strip(), "code": None}


def _describe_reason(reason: object, timeout: float) -> str:
    """A connection failure in a few words."""
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is the server running? firstspike serve)"
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s (--timeout)"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _describe_refusal(answer: Answer) -> str:
    """A refused file's line: the server's message, its code and the status."""
    code = answer.body.get("code")
    return f"{answer.body.get('error')} ({code + ', ' if code else ''}HTTP {answer.status})"


_HEADER = ("file", "label", "class", "timestep", "exit", "latency ms")
# Labels are short ("7", "T-shirt/top"); a longer one only shifts its own row.
_LABEL_WIDTH = 11


def _widths(files: Sequence[Path]) -> tuple[int, ...]:
    """The table's column widths: the file column fits every path, known before any answer."""
    file_width = max([len(_HEADER[0]), *(len(str(path)) for path in files)])
    return (file_width, _LABEL_WIDTH, 5, 8, 11, 10)


def _table_cells(path: Path, body: dict[str, Any]) -> tuple[str, ...]:
    """One classified file's cells."""
    return (
        str(path),
        str(body.get("label")),
        str(body.get("class_index")),
        f"{body.get('decision_timestep')}/{body.get('max_timesteps')}",
        str(body.get("exit_reason")),
        f"{float(body.get('latency_ms', 0.0)):.1f}",
    )


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Cells padded to their widths: text to the left, numbers to the right."""
    left = (True, True, False, False, True, False)
    padded = [
        cell.ljust(width) if is_left else cell.rjust(width)
        for cell, width, is_left in zip(cells, widths, left)
    ]
    return "  ".join(padded).rstrip()


def _positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    """``firstspike-classify``'s parser. Its ``--version`` is the model's, as on ``/classify``.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    add_classify_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``firstspike-classify``: what stops the run is one line on stderr and exit status 2.

    Args:
        argv: the arguments (default: the command line's).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    return run_reporting_errors(lambda: classify(args), prog=PROG, what="classify")


if __name__ == "__main__":
    sys.exit(main())
