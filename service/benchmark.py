"""Latency and throughput of POST /classify against a real server, early exit on vs off.

    python -m service.benchmark [--requests 720] [--clients 8] [--url http://127.0.0.1:8000]

Without ``--url`` it starts ``firstspike serve`` on a free 127.0.0.1 port with the shipped
model store and stops it afterwards. Both modes are measured in the same run against the same
server, so their ratio is meaningful even on a noisy machine; absolute figures are not.
Traffic goes only to the given URL and is bounded by ``--requests``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]


def digits_pngs() -> list[bytes]:
    import io

    from PIL import Image

    from training.data.digits import digit_to_png_pixels, digits_split

    images, _ = digits_split("test")
    encoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(digit_to_png_pixels(image), "L").save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    return encoded


def start_server(store: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "training.cli", "serve", "--port", str(port), "--model-store", str(store),
         "--log-level", "warning"],
        env={**os.environ, "FIRSTSPIKE_LOG_REQUESTS": "false"}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("benchmark: the server did not become ready within 60 s")


def _post(client: httpx.Client, png: bytes, early_exit: bool) -> float:
    started = time.perf_counter()
    response = client.post("/classify", content=png, headers={"content-type": "image/png"},
                           params={"early_exit": str(early_exit).lower()})
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"benchmark: request failed with {response.status_code}: {response.text}")
    return elapsed


def run_clients(url: str, pngs: list[bytes], total: int, clients: int, early_exit: bool) -> tuple[list[float], float]:
    """``total`` requests spread over ``clients`` threads; returns latencies and wall seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def worker(offset: int) -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=60) as client:
            for i in range(per_client):
                mine.append(_post(client, pngs[(offset + i) % len(pngs)], early_exit))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c * per_client,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--store", default=str(ROOT / "model_store"))
    parser.add_argument("--requests", type=int, default=720, help="requests per mode and phase")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    pngs = digits_pngs()
    process, url = (None, args.url) if args.url else start_server(Path(args.store))
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for png in pngs[:50]:  # warm both paths
                _post(client, png, True)
                _post(client, png, False)
        rows = {}
        for early_exit in (True, False):
            single, _ = run_clients(url, pngs, args.requests, 1, early_exit)
            concurrent, seconds = run_clients(url, pngs, args.requests, args.clients, early_exit)
            rows[early_exit] = {
                "p50_ms": statistics.median(single) * 1000,
                "p99_ms": percentile(single, 99) * 1000,
                "throughput": len(concurrent) / seconds,
                "concurrent_p50_ms": statistics.median(concurrent) * 1000,
                "concurrent_p99_ms": percentile(concurrent, 99) * 1000,
            }
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
    on, off = rows[True], rows[False]
    print(f"POST /classify, digits test PNGs, {args.requests} requests per cell, server {url}")
    print(f"| mode | 1 client p50 (ms) | 1 client p99 (ms) | {args.clients} clients req/s | "
          f"{args.clients} clients p50 (ms) | {args.clients} clients p99 (ms) |")
    print("|---|---|---|---|---|---|")
    for name, row in (("early exit", on), ("all T timesteps", off)):
        print(f"| {name} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['throughput']:.1f} | "
              f"{row['concurrent_p50_ms']:.2f} | {row['concurrent_p99_ms']:.2f} |")
    print(f"| all T / early exit | {off['p50_ms'] / on['p50_ms']:.2f}x | {off['p99_ms'] / on['p99_ms']:.2f}x | "
          f"{on['throughput'] / off['throughput']:.2f}x fewer | "
          f"{off['concurrent_p50_ms'] / on['concurrent_p50_ms']:.2f}x | "
          f"{off['concurrent_p99_ms'] / on['concurrent_p99_ms']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
