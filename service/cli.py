"""The serving command: ``firstspike-serve``, and ``firstspike serve`` with the same options.

It needs the core install only (no torch, no training code), so the slim image serves with it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from training import __version__
from training.contract.extras import needs
from training.contract.manifest import ModelStoreError

HELP = "serve the model store over HTTP (service.app:app with uvicorn)"
DESCRIPTION = (
    "Serve models with early-exit inference. Settings not given here come from FIRSTSPIKE_* "
    "environment variables."
)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The serving options, on ``firstspike-serve`` or on ``firstspike``'s ``serve`` command.

    Args:
        parser: the parser to add them to.
    """
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--model-store", help="model store root (FIRSTSPIKE_MODEL_STORE, default ./model_store)"
    )
    parser.add_argument("--models", help="comma-separated models to load (default: every model in the store)")
    parser.add_argument(
        "--runtime",
        choices=["auto", "torch", "onnx"],
        help="FIRSTSPIKE_RUNTIME (default auto: onnx for each version exported with its ONNX "
        "graphs, torch for the others)",
    )
    parser.add_argument("--threads", type=int, help="intra-op threads per runtime (FIRSTSPIKE_THREADS)")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="server processes on one port, each with its own models; /metrics sums them "
        "(FIRSTSPIKE_WORKERS, default 1)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )


def serve(args: argparse.Namespace) -> int:
    """Serve until interrupted, with the settings the options and the environment give.

    Args:
        args: the options of ``add_serve_arguments``.

    Returns:
        The exit status.

    Raises:
        ValueError: a setting the service cannot accept, named.
        FileNotFoundError: the model store is not a directory.
    """
    from pydantic import ValidationError

    from service.server import serve as run_server
    from service.settings import Settings

    overrides = {
        key: value
        for key, value in {
            "model_store": args.model_store,
            "runtime": args.runtime,
            "threads": args.threads,
            "workers": args.workers,
            "default_models": args.models.split(",") if args.models else None,
        }.items()
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        raise ValueError(f"invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if not settings.model_store.is_dir():
        raise FileNotFoundError(f"model store {settings.model_store} is not a directory")
    run_server(settings, args.host, args.port, args.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """``firstspike-serve``'s parser: ``--version`` and the serving options."""
    parser = argparse.ArgumentParser(prog="firstspike-serve", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"firstspike {__version__}")
    add_serve_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``firstspike-serve``: what the user gave wrong is one line on stderr and exit status 2.

    Args:
        argv: the arguments (default: the command line's).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    return run_reporting_errors(lambda: serve(args), prog="firstspike-serve", what="serve")


def run_reporting_errors(
    command: Callable[[], int],
    prog: str,
    what: str,
    extra: str | None = None,
    input_prefix: str | None = None,
) -> int:
    """Run a command; what the user got wrong is one line on stderr, never a traceback.

    Args:
        command: the command, its arguments bound.
        prog: the program's name, at the start of each message.
        what: what runs, for the message that names a missing optional dependency.
        extra: the extra that ``what`` needs as a whole (see ``needs``).
        input_prefix: the start of the message about a wrong input (default: ``prog``).

    Returns:
        The command's exit status; 2 for a missing extra or a wrong input (a model store, a
        path, a value), 130 when interrupted.
    """
    try:
        return command()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except ImportError as error:
        message = needs(what, error, extra)
        if message is None:  # not a missing optional dependency: a bug or a broken install
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except (ModelStoreError, ValueError, OSError) as error:
        # What a user gave (config, paths, model folders) was wrong: one line, no traceback.
        print(f"{input_prefix or prog}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
