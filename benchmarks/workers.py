"""Throughput of POST /classify with 1 and with 2 server processes (``firstspike serve --workers``),
torch and onnx runtimes, the same load on each.

    python -m benchmarks.workers [--seconds 5] [--clients 16] [--rounds 3]

It starts four servers on free 127.0.0.1 ports (each runtime with 1 and with 2 workers, the
shipped digits model, default settings otherwise: dynamic batching, automatic threads, which
are the machine's cores shared out between the workers) and keeps them all running, idle but
for the one being measured. Each round measures every server once, in turn, and the table
gives each server's median round, so that a change in background load hits all four alike.
The ratio is what the second process buys on this machine; on a machine with fewer free cores
than workers it cannot be 2. Load comes from wrk where it is installed (Debian package
``wrk``, one thread, sending one image), else from Python clients; traffic is bounded by
``--seconds`` per server and round.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks.common import ROOT, LoadResult, digits_pngs, load, measure, start_service, wrk_available

RUNTIMES = ("torch", "onnx")
WORKERS = (1, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(ROOT / "model_store"))
    parser.add_argument("--model", default="digits")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per server and round")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    pngs = digits_pngs()
    env = {"FIRSTSPIKE_DEFAULT_MODELS": args.model}
    servers = {}
    try:
        for runtime in RUNTIMES:
            for workers in WORKERS:
                servers[runtime, workers] = start_service(
                    Path(args.store), {**env, "FIRSTSPIKE_RUNTIME": runtime}, workers=workers
                )
        for server in servers.values():  # warm every worker's path (the kernel spreads connections)
            load(server.url, pngs, 100, args.clients)
        results: dict[tuple[str, int], list[LoadResult]] = {key: [] for key in servers}
        for _ in range(args.rounds):
            for key, server in servers.items():
                results[key].append(measure(server.url, pngs, args.clients, args.seconds))
    finally:
        for server in servers.values():
            server.stop()

    def median(key: tuple[str, int]) -> LoadResult:
        return sorted(results[key], key=lambda r: r.throughput)[len(results[key]) // 2]

    generator = "wrk" if wrk_available() else "Python clients"
    print(
        f"POST /classify, {args.model} test PNGs, {args.clients} connections, {args.seconds:g} s per server "
        f"and round, median of {args.rounds} rounds ({generator}), {os.cpu_count()} CPUs"
    )
    print(
        "| runtime | 1 worker req/s | 2 workers req/s | 2 / 1 | 1 worker p50 (ms) | 2 workers p50 (ms) | "
        "1 worker p99 (ms) | 2 workers p99 (ms) | spread of req/s over rounds (1 / 2 workers) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for runtime in RUNTIMES:
        one, two = median((runtime, 1)), median((runtime, 2))
        spread = " / ".join(
            f"{min(r.throughput for r in results[runtime, n]):.0f}-"
            f"{max(r.throughput for r in results[runtime, n]):.0f}"
            for n in WORKERS
        )
        print(
            f"| {runtime} | {one.throughput:.1f} | {two.throughput:.1f} | "
            f"{two.throughput / one.throughput:.2f}x | {one.p50_ms:.2f} | {two.p50_ms:.2f} | "
            f"{one.p99_ms:.2f} | {two.p99_ms:.2f} | {spread} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
