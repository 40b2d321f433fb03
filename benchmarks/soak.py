"""A bounded soak: many requests from concurrent clients, plus stream sessions opened and
abandoned, against one server; reports errors, latency and the server's memory growth.

    python -m benchmarks.soak [--requests 20000] [--clients 16] [--streams 300]

Starts ``firstspike serve`` on 127.0.0.1 with the shipped model store. Memory is the server
process's resident set (VmRSS) after warm-up and at the end. Any answer other than 200 stops the
soak with its status, so a finished run had no errors.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time

import numpy as np
from websockets.sync.client import connect

from benchmarks.common import ROOT, digits_pngs, load, rss_mib, start_service
from training.contract.events.format import encode
from training.data.digits_dvs import digits_dvs_split


def abandon_streams(
    url: str, streams: list[np.ndarray], count: int, errors: list[str], seed: int = 0
) -> None:
    """Open stream sessions, send a few packets and walk away (half without a close)."""
    rng = random.Random(seed)
    for index in range(count):
        events = streams[index % len(streams)]
        try:
            with connect(url, open_timeout=10) as ws:
                ws.send(json.dumps({"format": "dvs-events/1", "width": 34, "height": 34}))
                for start in range(0, rng.randint(1, 8) * 64, 64):
                    ws.send(encode(events[start : start + 64]))
                if index % 2:
                    ws.socket.close()
        except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the soak
            errors.append(repr(error))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--streams", type=int, default=300)
    args = parser.parse_args(argv)
    pngs = digits_pngs()
    streams = digits_dvs_split("test")[0][:50]
    server = start_service(ROOT / "model_store")
    try:
        load(server.url, pngs, 500, 8)  # warm up
        before = rss_mib(server.process.pid)
        stream_errors: list[str] = []
        ws_url = server.url.replace("http://", "ws://") + "/classify/stream"
        streamer = threading.Thread(
            target=abandon_streams, args=(ws_url, streams, args.streams, stream_errors)
        )
        started = time.perf_counter()
        streamer.start()
        result = load(server.url, pngs, args.requests, args.clients)
        streamer.join()
        seconds = time.perf_counter() - started
        time.sleep(1)
        after = rss_mib(server.process.pid)
        active = [
            line
            for line in __import__("httpx").get(server.url + "/metrics").text.splitlines()
            if line.startswith("firstspike_stream_sessions_active{")
        ]
    finally:
        server.stop()
    print(
        f"soak: {result.requests} requests from {args.clients} clients and {args.streams} abandoned stream "
        f"sessions in {seconds:.1f} s"
    )
    print(
        "| requests | errors | throughput | p50 | p99 | streams abandoned | stream errors | sessions left | "
        "RSS after warm-up | RSS at end | growth |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    left = sum(float(line.rsplit(" ", 1)[1]) for line in active)
    print(
        f"| {result.requests} | 0 | {result.throughput:.0f} req/s | {result.p50_ms:.1f} ms | "
        f"{result.p99_ms:.1f} ms | {args.streams} | {len(stream_errors)} | {left:.0f} | "
        f"{before:.0f} MiB | {after:.0f} MiB | "
        f"{after - before:+.1f} MiB |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
