"""Hostile inputs: small requests built to cost the server as much memory and CPU as they can.
Each is sent ``--concurrency`` times at once (6 by default) to one ``firstspike serve`` on
127.0.0.1; the benchmark prints, per input, the answers' statuses and their slowest time, the
server's peak resident memory meanwhile, and how long its CPU stays busy after the last answer.

    python -m benchmarks.hostile [--models fashion-mnist] [--concurrency 6] [--json]

The inputs (each a few kilobytes to a megabyte on the wire):

- ``wide``: a 16,777,216 x 1 grey PNG; ``tall``: the same turned on end
- ``wide16``: a 4096 x 4096 16-bit grey PNG
- ``rgb``: an 8192 x 2048 colour PNG, the most pixels and the longest side the limits accept
- ``ico``: an ICO file wrapping a 6000 x 6000 PNG
- ``png-text``: a 28 x 28 PNG carrying 64 zTXt chunks that inflate to 1 MiB each
- ``oip64``: one Open Inference Protocol request of 64 4096 x 4096 PNGs
- ``oip64-1024``: one of 64 1024 x 1024 PNGs, 67 million pixels, all of which are decoded
- ``empty-packets``: WebSocket streams that send nothing but empty packets, every half second,
  to a server whose streams may last ``--stream-max-seconds`` (FIRSTSPIKE_STREAM_MAX_SECONDS)

Memory is the server's VmRSS, sampled every 10 ms. A server above ``--rss-limit-mib`` is killed and
the run reported as such, so that a run of a vulnerable server cannot take the machine down.
Idle means the server process used under 5% of a core over a quarter of a second. Traffic goes
only to 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import struct
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from benchmarks.common import ROOT, RunningServer, rss_mib, start_service

if TYPE_CHECKING:
    from PIL import Image

CLIENT_TIMEOUT_S = 180.0
IDLE_CPU_SHARE = 0.05
IDLE_WINDOW_S = 0.25
IDLE_WAIT_S = 240.0
STREAM_HOLD_BOUND_S = 30.0  # the benchmark lets go of its streams after this long


def png(image: Image.Image) -> bytes:
    """``image`` as a PNG at the highest compression, so that its file is as small as can be."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def wide_png(width: int, height: int) -> bytes:
    """A uniform grey PNG of any size, small on the wire however many pixels it has.

    Args:
        width: Its width in pixels.
        height: Its height in pixels.

    Returns:
        The PNG file's bytes.
    """
    from PIL import Image

    return png(Image.new("L", (width, height), 128))


def wide16_png(side: int = 4096) -> bytes:
    """A square 16-bit grey PNG of a horizontal ramp."""
    from PIL import Image

    ramp = (np.arange(side, dtype=np.uint32) * 16).astype(np.uint16)
    return png(Image.fromarray(np.broadcast_to(ramp, (side, side)).copy()))  # uint16: mode I;16


def colour_png(width: int, height: int) -> bytes:
    """A colour PNG with a little content, so that nothing in it can be skipped."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (250, 250, 250))
    ImageDraw.Draw(image).ellipse(
        (width // 3, height // 4, 2 * width // 3, 3 * height // 4), fill=(20, 60, 120)
    )
    return png(image)


def ico_around_png(side: int = 6000) -> bytes:
    """An ICO file whose one entry is a PNG of ``side`` x ``side`` (its directory says 256 x 256,
    as it must for anything larger)."""
    inner = wide_png(side, side)
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(inner), 6 + 16)
    return header + entry + inner


def png_with_text_chunks(chunks: int = 64, inflated: int = 1 << 20) -> bytes:
    """A blank 28 x 28 PNG carrying compressed text chunks that inflate to far more than the file.

    Args:
        chunks: zTXt chunks, inserted after the header.
        inflated: Bytes of each chunk's text once inflated.

    Returns:
        The PNG file's bytes.
    """
    from PIL import Image

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    plain = png(Image.new("L", (28, 28)))
    end_of_header = 8 + 25  # signature, then IHDR: length, type, 13 bytes, CRC
    text = zlib.compress(b"a" * inflated, 9)
    chunks_data = b"".join(chunk(b"zTXt", b"key%d\x00\x00" % i + text) for i in range(chunks))
    return plain[:end_of_header] + chunks_data + plain[end_of_header:]


def oip_binary_body(files: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """One Open Inference Protocol request of image files in its binary extension.

    Args:
        files: The image files, one BYTES element each.

    Returns:
        The body (JSON header, then each file after its 4-byte length) and its HTTP headers.
    """
    raw = b"".join(struct.pack("<I", len(f)) + f for f in files)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [len(files)],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    return header + raw, {
        "Inference-Header-Content-Length": str(len(header)),
        "content-type": "application/octet-stream",
    }


@dataclass
class Hostile:
    """One hostile request.

    Args:
        name: Its name in the report (see the module's docstring).
        path: The endpoint, with its query.
        body: The request body.
        headers: Its HTTP headers (content type, OIP header length).
    """

    name: str
    path: str
    body: bytes
    headers: dict[str, str]


def hostile_set(model: str) -> list[Hostile]:
    """Every hostile request of the module's docstring but the streams, for one model.

    Args:
        model: The image model they go to.

    Returns:
        The requests, in the docstring's order.
    """
    image = {"content-type": "image/png"}
    classify = f"/classify?model={model}"
    oip_body, oip_headers = oip_binary_body([wide_png(4096, 4096)] * 64)
    budget_body, budget_headers = oip_binary_body([wide_png(1024, 1024)] * 64)
    return [
        Hostile("wide", classify, wide_png(16_777_216, 1), image),
        Hostile("tall", classify, wide_png(1, 16_777_216), image),
        Hostile("wide16", classify, wide16_png(), image),
        Hostile("rgb", classify, colour_png(8192, 2048), image),
        Hostile("ico", classify, ico_around_png(), {"content-type": "image/x-icon"}),
        Hostile("png-text", classify, png_with_text_chunks(), image),
        Hostile("oip64", f"/v2/models/{model}/infer", oip_body, oip_headers),
        Hostile("oip64-1024", f"/v2/models/{model}/infer", budget_body, budget_headers),
    ]


class ProcessWatch:
    """Samples a process's VmRSS every 10 ms in a thread; kills it above ``limit_mib``.

    Used as a context manager: sampling runs from ``__enter__`` to ``__exit__``; ``peak_mib``
    holds the highest sample since the start or the last ``reset``, ``killed`` whether it killed.

    Args:
        pid: The process to watch.
        limit_mib: The resident set above which it is killed (SIGKILL).
    """

    def __init__(self, pid: int, limit_mib: float) -> None:
        self.pid, self.limit_mib = pid, limit_mib
        self.peak_mib = 0.0
        self.killed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def reset(self) -> None:
        """Start a new peak."""
        self.peak_mib = 0.0

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                rss = rss_mib(self.pid)
            except (OSError, RuntimeError):
                return
            self.peak_mib = max(self.peak_mib, rss)
            if rss > self.limit_mib:
                os.kill(self.pid, 9)
                self.killed = True
                return


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a process has used, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds_to_idle(pid: int, bound: float = IDLE_WAIT_S) -> float | None:
    """From now until the process's CPU use over a window falls under the idle share.

    Args:
        pid: The process.
        bound: The longest wait in seconds.

    Returns:
        The seconds until the first idle window began; None if there was none within ``bound``
        (or the process is gone).
    """
    started = time.monotonic()
    try:
        while time.monotonic() - started < bound:
            before, at = cpu_seconds(pid), time.monotonic()
            time.sleep(IDLE_WINDOW_S)
            if (cpu_seconds(pid) - before) / (time.monotonic() - at) < IDLE_CPU_SHARE:
                return max(0.0, at - started)
    except OSError:
        return None
    return None


@dataclass
class Round:
    """What one hostile request, sent ``--concurrency`` times, did to the server."""

    name: str
    statuses: dict[str, int] = field(default_factory=dict)
    slowest_answer_s: float = 0.0
    peak_rss_mib: float = 0.0
    seconds_to_idle: float | None = None
    killed: bool = False


async def send_concurrently(url: str, hostile: Hostile, count: int) -> tuple[list[str], float]:
    """``hostile`` sent ``count`` times at once, on as many connections.

    Args:
        url: The server's base URL.
        hostile: The request.
        count: How many at once.

    Returns:
        Each answer's status code (or the client error's name), and the slowest one's seconds.
    """

    async def one(client: httpx.AsyncClient) -> tuple[str, float]:
        started = time.monotonic()
        try:
            response = await client.post(hostile.path, content=hostile.body, headers=hostile.headers)
            outcome = str(response.status_code)
        except httpx.HTTPError as error:
            outcome = type(error).__name__
        return outcome, time.monotonic() - started

    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        results = await asyncio.gather(*(one(client) for _ in range(count)))
    return [status for status, _ in results], max(seconds for _, seconds in results)


def tally(outcomes: list[str]) -> dict[str, int]:
    """How many times each outcome occurs."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def run_round(server: RunningServer, watch: ProcessWatch, hostile: Hostile, count: int) -> Round:
    """``hostile`` sent ``count`` times at once, then the wait until the server is idle."""
    watch.reset()
    outcomes, slowest = asyncio.run(send_concurrently(server.url, hostile, count))
    result = Round(hostile.name, tally(outcomes), round(slowest, 2))
    result.seconds_to_idle = None if watch.killed else seconds_to_idle(server.process.pid)
    result.peak_rss_mib = round(watch.peak_mib, 1)
    result.killed = watch.killed
    return result


async def hold_streams(url: str, count: int, every: float, bound: float) -> list[float]:
    """``count`` WebSocket sessions sending only empty packets; per session, the seconds until
    the server ended it (``bound`` if it never did)."""
    from websockets.asyncio.client import connect

    async def one() -> float:
        started = time.monotonic()
        try:
            async with connect(url.replace("http://", "ws://") + "/classify/stream", open_timeout=10) as ws:
                await ws.send(json.dumps({"format": "dvs-events/1", "width": 34, "height": 34}))
                while time.monotonic() - started < bound:
                    await ws.send(b"")
                    try:
                        await asyncio.wait_for(ws.recv(), every)
                        break  # the server said something: an error, then it closes
                    except asyncio.TimeoutError:
                        continue
        except Exception:  # noqa: BLE001 - the server closing on us is the point
            pass
        return min(bound, time.monotonic() - started)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="digits,fashion-mnist", help="comma-separated image models")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--rss-limit-mib", type=float, default=8192)
    parser.add_argument("--only", default="", help="comma-separated input names (default: all)")
    parser.add_argument(
        "--stream-max-seconds",
        type=float,
        default=10.0,
        help="FIRSTSPIKE_STREAM_MAX_SECONDS of the server the empty-packet streams go to",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    only = {name for name in args.only.split(",") if name}
    report: dict[str, Any] = {"rounds": {}, "streams": None}
    for model in args.models.split(","):
        rounds = []
        for hostile in hostile_set(model):
            if only and hostile.name not in only:
                continue
            # A fresh server per input, so that each peak is that input's own.
            server = start_service(ROOT / "model_store")
            try:
                baseline = rss_mib(server.process.pid)
                with ProcessWatch(server.process.pid, args.rss_limit_mib) as watch:
                    result = run_round(server, watch, hostile, args.concurrency)
                result_row = {**asdict(result), "baseline_rss_mib": round(baseline, 1)}
                rounds.append(result_row)
                if not args.json:
                    idle = "never" if result.seconds_to_idle is None else f"{result.seconds_to_idle:.2f} s"
                    print(
                        f"{model:>14} {hostile.name:>8} ({len(hostile.body) / 1024:7.0f} KiB): "
                        f"{result.statuses} slowest {result.slowest_answer_s:6.2f} s, RSS "
                        f"{baseline:6.0f} -> peak {result.peak_rss_mib:7.0f} MiB"
                        f"{' KILLED' if result.killed else ''}, idle after {idle}",
                        flush=True,
                    )
            finally:
                server.stop()
        report["rounds"][model] = rounds
    if not only or "empty-packets" in only:
        server = start_service(
            ROOT / "model_store", env={"FIRSTSPIKE_STREAM_MAX_SECONDS": str(args.stream_max_seconds)}
        )
        try:
            held = asyncio.run(hold_streams(server.url, args.concurrency, 0.5, STREAM_HOLD_BOUND_S))
        finally:
            server.stop()
        report["streams"] = {
            "held_s": [round(s, 2) for s in held],
            "bound_s": STREAM_HOLD_BOUND_S,
            "stream_max_seconds": args.stream_max_seconds,
        }
        if not args.json:
            print(
                f"empty-packet streams held for {min(held):.1f}-{max(held):.1f} s (stream_max_seconds "
                f"{args.stream_max_seconds:g}; the benchmark lets go at {STREAM_HOLD_BOUND_S:g} s)"
            )
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
