"""Run by test_distributed under torchrun: a few data-parallel training steps on digits, then
each rank writes its parameters so the test can compare them."""

import sys
from pathlib import Path

from safetensors.torch import save_file

from training.config import load_config
from training.distributed import init_distributed, shutdown_distributed
from training.trainer import train


def main(out_dir: str) -> None:
    context = init_distributed()
    config = load_config("digits", ["epochs=1", "batch_size=32", "network.arch_args.channels=[8, 16]"])
    result = train(config, progress=False, context=context)
    parameters = {name: value.detach().contiguous() for name, value in result.network.named_parameters()}
    save_file(parameters, str(Path(out_dir) / f"rank{context.rank}.safetensors"),
              metadata={"world_size": str(context.world_size), "steps": str(len(result.history))})
    shutdown_distributed(context)


if __name__ == "__main__":
    main(sys.argv[1])
