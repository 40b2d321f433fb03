"""Ablations on digits with one budget and seed: LE module vs direct intensity encoding, TAD vs
mean-output CE, latency-coded vs rate-coded (TET), and the same-architecture ANN.

    python -m training.ablations [--epochs 60] [--seed 0] [--json results.json]

Prints a markdown table: accuracy, mean decision timestep, firing rate and energy per sample
(test split). Runs are seeded and deterministic on a given machine.
"""

from __future__ import annotations

import argparse
import json
import sys

from training.config import load_config
from training.data import load_dataset
from training.evaluate import evaluate
from training.trainer import train

VARIANTS = {
    "latency, LE, TAD (shipped recipe)": [],
    "latency, direct intensity, TAD": ["network.encoder=intensity"],
    "latency, LE, mean-output CE": ["loss={name: mean_ce}"],
    "rate-coded, direct input, TET": ["network.coding=rate", "network.encoder=direct", "loss={name: tet}"],
    "ANN (ReLU), same architecture": ["network.coding=ann", "network.encoder=direct", "loss={name: mean_ce}"],
}


def run_variant(overrides: list[str], epochs: int, seed: int) -> dict:
    config = load_config("digits", [f"epochs={epochs}", f"seed={seed}", f"eval_every={epochs}", *overrides])
    result = train(config, progress=False)
    evaluation = evaluate(result.network, load_dataset("digits", "test"))
    return {
        "accuracy": evaluation.accuracy,
        "mean_decision_timestep": evaluation.mean_decision_timestep,
        "firing_rate": evaluation.firing_rate,
        "energy_nj": evaluation.energy_joules_per_sample * 1e9,
        "overrides": overrides,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="run only variants whose name contains this")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    rows = {}
    print("| variant | accuracy | mean decision timestep | firing rate | energy (nJ/sample) |")
    print("|---|---|---|---|---|")
    for name, overrides in VARIANTS.items():
        if args.only and not any(part in name for part in args.only):
            continue
        row = rows[name] = run_variant(overrides, args.epochs, args.seed)
        rate = "n/a" if row["firing_rate"] is None else f"{row['firing_rate']:.3f}"
        print(f"| {name} | {row['accuracy'] * 100:.2f}% | {row['mean_decision_timestep']:.2f} | {rate} | "
              f"{row['energy_nj']:.1f} |", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"epochs": args.epochs, "seed": args.seed, "results": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
