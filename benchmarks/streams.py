"""Event streams over a real WebSocket, paced in real time: how early the decision comes.

    python -m benchmarks.streams [--streams 100] [--packet-ms 5] [--split test] [--versions 2,3]

Starts ``firstspike serve`` on 127.0.0.1 with the shipped model store, sends digits-dvs test
streams as a live sensor would (packets of ``--packet-ms`` of events at their own pace) and
stops sending when the decision arrives, to each stored version of ``digits-dvs`` in turn.
Prints the share of streams decided before they ended, the mean share of events the network
used, and the time from the packet that completed the deciding bin (its first event at or past
the bin's end) to the decision message.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from benchmarks.common import ROOT, percentile, start_service, versions_to_compare
from training.contract.events.format import encode
from training.data.digits_dvs import BIN_US, digits_dvs_split


def run_stream(url: str, events: np.ndarray, packet_us: int) -> dict[str, Any]:
    """One stream sent at its own pace until the decision arrives: the decision, its latency
    from the completing packet, whether it came before the stream ended, the share of events
    used."""
    t0 = int(events["t"][0])
    edges = np.arange(t0, int(events["t"][-1]) + packet_us + 1, packet_us)
    bounds = np.searchsorted(events["t"], edges)
    sent_at: list[tuple[int, float]] = []  # (index of the packet's last event + 1, wall time sent)
    with connect(url, open_timeout=10) as ws:
        replies: list[tuple[dict[str, Any], float]] = []

        def listen() -> None:
            message = ws.recv(timeout=60)
            replies.append((json.loads(message), time.perf_counter()))

        listener = threading.Thread(target=listen)
        listener.start()
        ws.send(json.dumps({"format": "dvs-events/1", "width": 34, "height": 34}))
        started = time.perf_counter()
        for start, end, edge in zip(bounds[:-1], bounds[1:], edges[1:]):
            if replies:
                break
            delay = started + (edge - t0) / 1e6 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the sensor's own pace
            if end > start:
                try:
                    ws.send(encode(events[start:end]))
                except ConnectionClosed:  # decided and closed while we were sending
                    break
                sent_at.append((int(end), time.perf_counter()))
        else:
            with contextlib.suppress(ConnectionClosed):
                ws.send(json.dumps({"type": "end"}))
                sent_at.append((len(events), time.perf_counter()))
        listener.join(timeout=60)
    decision, received = replies[0]
    # the first event at or past the end of the deciding bin completed it
    completing = int(np.searchsorted(events["t"], t0 + decision["decision_timestep"] * BIN_US))
    sent = (
        next(at for last, at in sent_at if last > completing) if completing < len(events) else sent_at[-1][1]
    )
    return {
        "decision": decision,
        "latency": received - sent,
        "before_end": decision["events_received"] < len(events),
        "share_used": decision["events_used"] / len(events),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--packet-ms", type=float, default=5.0)
    parser.add_argument("--split", default="test", help="digits-dvs split: test or other-cameras")
    parser.add_argument("--versions", help="digits-dvs versions, e.g. 2,3 (default: all in the store)")
    args = parser.parse_args(argv)
    store = ROOT / "model_store"
    versions = versions_to_compare(args.versions, store / "digits-dvs")
    streams, labels = digits_dvs_split(args.split)
    server = start_service(store)
    rows = {}
    try:
        for version in versions:  # one server, versions in turn: figures side by side
            url = (
                server.url.replace("http://", "ws://")
                + f"/classify/stream?model=digits-dvs&version={version}"
            )
            rows[version] = [
                run_stream(url, streams[i], int(args.packet_ms * 1000)) for i in range(args.streams)
            ]
    finally:
        server.stop()
    print(f"{args.streams} digits-dvs {args.split} streams, real-time pace, {args.packet_ms:g} ms packets")
    print(
        "| version | accuracy | mean decision timestep | decided before the stream ended | "
        "mean share of events used | completing packet -> decision p50 | p99 |"
    )
    print("|---|---|---|---|---|---|---|")
    for version, results in rows.items():
        latencies = [r["latency"] * 1000 for r in results]
        correct = sum(r["decision"]["class_index"] == labels[i] for i, r in enumerate(results))
        print(
            f"| {version} | {correct / len(results):.4f} | "
            f"{statistics.mean(r['decision']['decision_timestep'] for r in results):.2f} | "
            f"{sum(r['before_end'] for r in results) / len(results):.3f} | "
            f"{statistics.mean(r['share_used'] for r in results):.3f} | "
            f"{statistics.median(latencies):.2f} ms | "
            f"{percentile(latencies, 99):.2f} ms |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
