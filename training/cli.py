"""The ``firstspike`` command: train, eval, export, serve."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service import cli as serve_cli
from service import client
from training import __version__

if TYPE_CHECKING:  # the command itself must import without torch (firstspike serve)
    from training.config import TrainConfig

# The extra each command needs beyond the core install (serve: none), named when a module it
# imports is missing.
COMMAND_EXTRAS = {
    "train": "train",
    "eval": "train",
    "export": "train",
    "calibrate": "train",
    "report": "train",
    "experiment": "train",
    "serve": None,
    "classify": None,
}


def _train(args: argparse.Namespace) -> int:
    import yaml

    from training.config import load_config
    from training.trainer import train

    if (args.resume or args.until_epoch) and not args.out:
        raise ValueError("--resume and --until-epoch need --out (the run folder holding the checkpoint)")
    recorded = Path(args.out) / "config.yaml" if args.out else None
    if args.resume and args.config is None and recorded is not None and recorded.is_file():
        # the run's own recipe, as chosen when it started (its epochs fitted to that budget)
        config = load_config(recorded, args.set or [])
    elif args.data is not None:
        config = _folder_config(args)
    elif args.config is not None:
        config = load_config(args.config, args.set or [])
    else:
        raise ValueError(
            "give --config (a config file or shipped name) or --data (a folder of class folders)"
        )
    if args.out:
        # The whole recipe, as chosen: `firstspike train --config RUN/config.yaml` repeats the run.
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    result = train(
        config, run_dir=args.out, resume=args.resume, progress=not args.quiet, until_epoch=args.until_epoch
    )
    if result.history:
        last = result.history[-1]
        shown = {k: v for k, v in last.items() if k.startswith(("test_", "val_")) or k in ("epoch", "loss")}
        print(json.dumps(shown))
    return 0


def _folder_config(args: argparse.Namespace) -> TrainConfig:
    """The config for a folder of class folders: its default recipe, a config file's values over
    it (``--config``), then ``--set``; the folder's scan is printed first."""
    from dataclasses import replace

    from training.config import TrainConfig, apply_override, read_config_values
    from training.data.image_folder import default_recipe, evaluation_interval, scan_folder
    from training.data.image_folder_cache import ImageCache

    cache = ImageCache()
    scan = scan_folder(args.data, args.strict, cache=cache)
    if not args.quiet:
        print(scan.table(), file=sys.stderr)
        known, looked_up = cache.stats.hits, cache.stats.hits + cache.stats.misses
        print(f"cache {cache.directory}: {known} of {looked_up} files known from before", file=sys.stderr)
    values = default_recipe(scan, input_size=args.input_size)
    if args.max_mean_timestep is not None:
        values["max_mean_timestep"] = args.max_mean_timestep
    given = {override.split("=", 1)[0] for override in args.set or []}
    if args.config is not None:
        file_values = read_config_values(args.config)
        given |= set(file_values)
        values = _merged(values, file_values)
    for override in args.set or []:
        apply_override(values, override)
    config = TrainConfig.from_dict(values)
    epochs_given = args.config is not None or "epochs" in given
    if args.time_budget > 0 and not epochs_given and not args.resume:
        config = _within_budget(config, args.time_budget * 60, args.quiet)
    if "eval_every" not in given:  # spread over the epochs chosen, however they were
        config = replace(config, eval_every=evaluation_interval(config.epochs))
    return config


def _within_budget(config: TrainConfig, budget_seconds: float, quiet: bool) -> TrainConfig:
    """``config`` with as many of its epochs as fit ``budget_seconds`` here."""
    from training.recipe_budget import fit_epochs
    from training.trainer import load_training_data

    train_set, _ = load_training_data(config)
    fit = fit_epochs(config, train_set, budget_seconds)
    if not quiet:
        twin_step = fit.seconds_per_pretraining_step
        twin = (
            f", after {fit.pretraining_epochs} of its ANN twin ({twin_step:.2f} s a step)"
            if fit.pretraining_epochs is not None
            else ""
        )
        print(
            f"recipe: {fit.epochs} epochs of {fit.steps_per_epoch} steps "
            f"({fit.seconds_per_step:.2f} s a step){twin}; "
            f"{fit.seconds_per_image * 1000:.1f} ms an image loaded here; about "
            f"{fit.expected_seconds / 60:.0f} min (--time-budget {budget_seconds / 60:g} min)",
            file=sys.stderr,
        )
    return fit.applied(config)


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s values over it, mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _eval(args: argparse.Namespace) -> int:
    from training.data import load_dataset
    from training.evaluate import evaluate
    from training.folder_eval import evaluate_folder
    from training.store.load import load_network

    network, manifest = load_network(args.model_dir)
    if args.data is not None:
        if args.dataset or args.data_root:
            raise ValueError(
                "--data evaluates a folder of class folders: leave out --dataset and --data-root"
            )
        report = evaluate_folder(
            network, manifest, args.data, args.split, strict=args.strict, batch_size=args.batch_size
        )
        print(json.dumps(report.to_dict()) if args.json else report.text())
        return 0
    args.split = args.split or "test"
    dataset_name = args.dataset or manifest.evaluation.dataset
    result = evaluate(
        network,
        load_dataset(dataset_name, args.split, args.data_root, timesteps=network.timesteps),
        batch_size=args.batch_size,
    )
    summary = {
        "model": {"name": manifest.name, "version": manifest.version},
        "dataset": dataset_name,
        "split": args.split,
        **result.summary(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        firing_rate = result.firing_rate if result.firing_rate is None else round(result.firing_rate, 4)
        print(
            f"{manifest.name_and_version} on {dataset_name} {args.split}: "
            f"accuracy {result.accuracy:.4f}, mean decision timestep {result.mean_decision_timestep:.3f} "
            f"of {result.timesteps}, firing rate {firing_rate}, "
            f"energy {result.energy_joules_per_sample * 1e9:.3f} nJ/sample, {result.samples} samples"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate
    from training.store.export import export_version
    from training.store.source import load_trained

    source = load_trained(args.run_dir)
    network = source.network
    if args.output_leak is not None or args.output_threshold is not None:
        network.set_output_neuron(
            **{
                name: value
                for name, value in (("leak", args.output_leak), ("threshold", args.output_threshold))
                if value is not None
            }
        )
    # Reported on the test split; an image folder without one: on validation, as chosen there.
    evaluation_set, info, split = source.load_split()
    result = evaluate(network, evaluation_set)
    training = {**source.training, "command": " ".join(["firstspike", *sys.argv[1:]])}
    path = export_version(
        network,
        args.store,
        args.name or source.name,
        info,
        result,
        split=split,
        training=training,
        version=args.version,
        onnx=args.onnx,
    )
    print(
        json.dumps(
            {
                "exported": str(path),
                "accuracy": result.accuracy,
                "mean_decision_timestep": result.mean_decision_timestep,
            }
        )
    )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from training import calibration
    from training.data.image_folder import DATASET_NAME as IMAGE_FOLDER
    from training.store.source import load_trained

    source = load_trained(args.source)
    network = source.network
    dataset_name = args.dataset or source.dataset
    # Never the test split: an image folder's validation split, else the training split.
    split = args.split or ("val" if dataset_name == IMAGE_FOLDER else "train")
    if network.spec.coding != "latency":
        raise ValueError(
            f"{args.source} is {network.spec.coding}-coded: only latency-coded networks decide at a "
            "first spike"
        )
    if args.samples < 1 or args.max_mean_timestep < 1:
        raise ValueError("--samples and --max-mean-timestep must be at least 1")
    samples, _, split = source.load_split(split, args.dataset, args.data_root)
    outcome = calibration.calibrate(
        network,
        samples,
        args.max_mean_timestep,
        args.samples,
        args.seed,
        args.leaks or calibration.DEFAULT_LEAKS,
        args.thresholds or calibration.DEFAULT_THRESHOLDS,
    )
    chosen = outcome.chosen
    print(
        json.dumps(
            {
                "dataset": dataset_name,
                "split": split,
                "samples": outcome.samples,
                "max_mean_timestep": args.max_mean_timestep,
                "rules": calibration.as_rows(outcome.rules),
                "chosen": calibration.as_rows([chosen])[0],
                "export_flags": f"--output-leak {chosen.leak:g} --output-threshold {chosen.threshold:g}",
            }
        )
    )
    return 0


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(value) for value in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _report(args: argparse.Namespace) -> int:
    from training.report import build_report

    report = build_report(
        args.model_dir,
        args.dataset,
        args.out,
        rate_model=args.rate_model,
        ann_model=args.ann_model,
        data_root=args.data_root,
        with_robustness=not args.no_robustness,
        seed=args.seed,
    )
    print(
        json.dumps(
            {
                "report": str(args.out) + "/report.json",
                "figures": report["figures"],
                "seconds": round(report["seconds"], 1),
            }
        )
    )
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from training.experiment import ROOT, run_experiment

    if args.robustness_samples is not None and args.robustness_samples < 1:
        raise ValueError(f"--robustness-samples must be at least 1, got {args.robustness_samples}")
    events = args.events_model
    if events is None and args.config == "digits":
        events = str(ROOT / "model_store" / "digits-dvs")  # the shipped event model
    path = run_experiment(
        args.out,
        args.work,
        epochs=args.epochs,
        seed=args.seed,
        robustness=not args.no_robustness,
        config=args.config,
        overrides=args.overrides,
        page=args.page,
        events_model=events or None,
        robustness_samples=args.robustness_samples,
        skip=tuple(args.skip),
    )
    print(json.dumps({"results": str(path)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``firstspike`` command line: one subcommand per task.

    Returns:
        The parser; each subcommand sets ``handler``, the function that runs it.
    """
    parser = argparse.ArgumentParser(
        prog="firstspike", description="Train and serve latency-coded spiking networks."
    )
    parser.add_argument("--version", action="version", version=f"firstspike {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train a network from a config",
        description="Train a network. Use torchrun --nproc_per_node=N to train data-parallel.",
    )
    train.add_argument("--config", help="YAML/JSON config path or a shipped config name (e.g. digits)")
    train.add_argument(
        "--data",
        metavar="DIR",
        help="train on your own images: one folder per class (the folder name is the label), optionally "
        "under train/, val/ and test/; a recipe is chosen from the data (--config and --set override it)",
    )
    train.add_argument(
        "--input-size",
        type=int,
        metavar="PX",
        help="with --data: the model's input side (default: from the images)",
    )
    train.add_argument(
        "--strict", action="store_true", help="with --data: refuse a file that is not a readable image"
    )
    train.add_argument(
        "--time-budget",
        type=float,
        default=12.0,
        metavar="MIN",
        help="with --data and no --config: fit the recipe's epochs to about this many minutes of training "
        "on this machine, from a few timed steps (default 12; 0: the recipe's epochs whatever they take)",
    )
    train.add_argument(
        "--max-mean-timestep",
        type=float,
        metavar="T",
        help="with --data: the latency budget the output neurons are calibrated for on the "
        "validation split after training (default 1.5)",
    )
    train.add_argument("--out", help="run folder for checkpoint.pt and history.json")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument(
        "--until-epoch",
        type=int,
        metavar="N",
        help="stop after epoch N (keeping the full schedule); continue later with --resume",
    )
    train.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set epochs=10 --set network.coding=rate",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("eval", help="evaluate a model-store version")
    evaluate.add_argument("model_dir", help="model_store/<name>/<version> or model_store/<name> (latest)")
    evaluate.add_argument("--dataset", help="data set (default: the one in the manifest)")
    evaluate.add_argument(
        "--data",
        metavar="DIR",
        help="your own images: class folders named by the model's labels (optionally under train/, val/, "
        "test/); reports per-class accuracy, confusion, decision times and the least confident files",
    )
    evaluate.add_argument(
        "--split", help="split to evaluate (default test; --data: test/ or val/, a plain folder whole)"
    )
    evaluate.add_argument("--data-root", help="root folder for on-disk data sets")
    evaluate.add_argument(
        "--strict", action="store_true", help="with --data: refuse a file that is not a readable image"
    )
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=_eval)

    export = commands.add_parser(
        "export", help="export a training run (or a stored version, again) to the model store"
    )
    export.add_argument(
        "run_dir",
        help="run folder (or checkpoint.pt) written by train --out, or a model-store "
        "version folder: its weights as a new version, with this release's ONNX graphs",
    )
    export.add_argument("--store", default="model_store", help="model store root (default ./model_store)")
    export.add_argument("--name", help="model name (default: the config's name)")
    export.add_argument("--version", type=int, help="version number (default: next free)")
    export.add_argument(
        "--onnx",
        action="store_true",
        help="also write the single-timestep ONNX graphs (encoder, step, first step, first decision) "
        "for the onnx runtime",
    )
    export.add_argument(
        "--output-leak",
        type=float,
        metavar="LEAK",
        help="leak of the output neurons in the exported model (decision-time: training does not use it)",
    )
    export.add_argument(
        "--output-threshold",
        type=float,
        metavar="V_TH",
        help="threshold of the output neurons: how much evidence the first output spike needs",
    )
    export.set_defaults(handler=_export)

    calibrate = commands.add_parser(
        "calibrate",
        help="choose the output neurons' leak and threshold for a latency budget",
        description="Replay the output neurons of a trained latency-coded network for several "
        "(leak, threshold) pairs on one forward pass over a sample of a split; print each pair's "
        "accuracy and mean decision timestep and the most accurate pair within --max-mean-timestep, "
        "as export flags.",
    )
    calibrate.add_argument("source", help="a run folder (or checkpoint.pt) or a model-store version")
    calibrate.add_argument("--dataset", help="data set (default: the run's or the manifest's)")
    calibrate.add_argument(
        "--split", help="split to calibrate on (default: an image folder's val, else train: keep test unseen)"
    )
    calibrate.add_argument("--data-root", help="root folder for on-disk data sets")
    calibrate.add_argument(
        "--samples", type=int, default=5000, help="seeded sample of the split (default 5000)"
    )
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.add_argument(
        "--max-mean-timestep",
        type=float,
        required=True,
        metavar="T",
        help="latency budget: the mean decision timestep the chosen rule may take",
    )
    calibrate.add_argument(
        "--leaks", type=_float_list, metavar="L1,L2", help="output leaks to try (default 0.5,1)"
    )
    calibrate.add_argument(
        "--thresholds", type=_float_list, metavar="V1,V2", help="output thresholds to try (default 1 to 8)"
    )
    calibrate.set_defaults(handler=_calibrate)

    report = commands.add_parser(
        "report",
        help="the paper's tables and figures for a model version",
        description="Write report.json and PNG figures: Table I-IV, Fig. 2a, 3, 5.",
    )
    report.add_argument("model_dir", help="model_store/<name>/<version> or model_store/<name> (latest)")
    report.add_argument("--dataset", help="data set (default: the one in the manifest)")
    report.add_argument("--out", required=True, help="folder for report.json and the PNGs")
    report.add_argument("--rate-model", help="a rate-coded model of the same architecture, for Tables II-IV")
    report.add_argument("--ann-model", help="a trained same-architecture ANN, for accuracies in Table II")
    report.add_argument("--data-root", help="root folder for on-disk data sets")
    report.add_argument("--no-robustness", action="store_true", help="skip the 15 x 5 corruptions (Table IV)")
    report.add_argument("--seed", type=int, default=0, help="seed of the corruptions")
    report.set_defaults(handler=_report)

    experiment = commands.add_parser(
        "experiment",
        help="train the paper's comparison models and write a results page",
        description="Train ANN, rate-coded (TET), latency-coded with and without LE and "
        "TAD, and T in {2,4,6,8} from one config (digits by default); write "
        "a results page (docs/results.md) from them.",
    )
    experiment.add_argument(
        "--config", default="digits", help="the config the variants start from (default digits)"
    )
    experiment.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value for every variant, e.g. --set train_images=15000",
    )
    experiment.add_argument("--out", default="docs", help="where the page and its figures go (default docs)")
    experiment.add_argument("--page", default="results.md", help="the page's file name under --out")
    experiment.add_argument(
        "--events-model", help="also report on this event model (digits: model_store/digits-dvs; '' for none)"
    )
    experiment.add_argument("--work", default="runs/experiment", help="scratch folder for the trained models")
    experiment.add_argument("--epochs", type=int, default=60)
    experiment.add_argument("--seed", type=int, default=0)
    experiment.add_argument(
        "--no-robustness", action="store_true", help="skip Table IV (the 15 x 5 corruptions)"
    )
    experiment.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="VARIANT",
        help="leave out a point of the T scan: latency-t2, latency-t6 or latency-t8 (repeatable)",
    )
    experiment.add_argument(
        "--robustness-samples",
        type=int,
        metavar="N",
        help="Table IV on a seeded subset of N test images (default all)",
    )
    experiment.set_defaults(handler=_experiment)

    # The serving command itself lives in the service (``firstspike-serve``); this is the same one.
    serve = commands.add_parser("serve", help=serve_cli.HELP, description=serve_cli.DESCRIPTION)
    serve_cli.add_serve_arguments(serve)
    serve.set_defaults(handler=serve_cli.serve)
    classify = commands.add_parser("classify", help=client.HELP, description=client.DESCRIPTION)
    client.add_classify_arguments(classify)
    classify.set_defaults(handler=client.classify)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``firstspike`` command.

    Args:
        argv: The arguments after the program name; None reads ``sys.argv``.

    Returns:
        The exit status: 0 on success, 2 for a usage or input error (one line on stderr), 130
        when interrupted.
    """
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return serve_cli.run_reporting_errors(
        lambda: handler(args),
        prog="firstspike",
        what=args.command,
        extra=COMMAND_EXTRAS.get(args.command),
        input_prefix=f"firstspike {args.command}",
    )


if __name__ == "__main__":
    sys.exit(main())
