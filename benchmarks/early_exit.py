"""Latency and throughput of POST /classify against a real server, early exit on vs off.

    python -m benchmarks.early_exit [--seconds 5] [--clients 8] [--url URL]

Without ``--url`` it starts ``firstspike serve`` on a free 127.0.0.1 port with the shipped
model store and stops it afterwards. Both modes are measured in the same run against the same
server, so their ratio is meaningful even on a noisy machine; absolute figures are not.
Traffic goes only to that server and is bounded by ``--seconds`` per cell. Load comes from wrk
where it is installed (Debian package ``wrk``), else from Python clients.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import ROOT, LoadResult, digits_pngs, load, measure, start_service, wrk_available


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--store", default=str(ROOT / "model_store"))
    parser.add_argument("--seconds", type=float, default=5, help="seconds per mode and phase")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    pngs = digits_pngs()
    server = None if args.url else start_service(Path(args.store), {"FIRSTSPIKE_MAX_BATCH_SIZE": "1"})
    url = args.url if server is None else server.url
    try:
        for early_exit in ("true", "false"):  # warm both paths
            load(url, pngs, 50, 1, {"early_exit": early_exit})
        rows: dict[str, tuple[LoadResult, LoadResult]] = {}
        for early_exit in ("true", "false"):
            params = {"early_exit": early_exit}
            rows[early_exit] = (
                measure(url, pngs, 1, args.seconds, params),
                measure(url, pngs, args.clients, args.seconds, params),
            )
    finally:
        if server is not None:
            server.stop()
    (on_single, on_many), (off_single, off_many) = rows["true"], rows["false"]
    generator = "wrk" if wrk_available() else "Python clients"
    print(
        f"POST /classify, digits test PNGs, {args.seconds:g} s per cell ({generator}), server {url}, "
        "batch size 1"
    )
    print(
        f"| mode | 1 client p50 (ms) | 1 client p99 (ms) | {args.clients} clients req/s | "
        f"{args.clients} clients p50 (ms) | {args.clients} clients p99 (ms) |"
    )
    print("|---|---|---|---|---|---|")
    for name, single, many in (("early exit", on_single, on_many), ("all T timesteps", off_single, off_many)):
        print(
            f"| {name} | {single.p50_ms:.2f} | {single.p99_ms:.2f} | {many.throughput:.1f} | "
            f"{many.p50_ms:.2f} | {many.p99_ms:.2f} |"
        )
    print(
        f"| all T / early exit | {off_single.p50_ms / on_single.p50_ms:.2f}x | "
        f"{off_single.p99_ms / on_single.p99_ms:.2f}x | "
        f"{on_many.throughput / off_many.throughput:.2f}x fewer | "
        f"{off_many.p50_ms / on_many.p50_ms:.2f}x | {off_many.p99_ms / on_many.p99_ms:.2f}x |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
