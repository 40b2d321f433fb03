"""Run by test_distributed under torchrun: a few data-parallel training steps on digits, then
each rank writes its parameters and BatchNorm statistics so the test can compare them.

    ddp_worker.py OUT_DIR [sync_batchnorm=true|false]
"""

import json
import sys
from pathlib import Path

from safetensors.torch import save_file

from training.config import load_config
from training.distributed import init_distributed, shutdown_distributed
from training.trainer import train


def main(out_dir: str, sync_batchnorm: str = "false") -> None:
    context = init_distributed()
    config = load_config(
        "digits",
        [
            "epochs=1",
            "batch_size=32",
            "network.arch_args.channels=[8, 16]",
            f"sync_batchnorm={sync_batchnorm}",
        ],
    )
    result = train(
        config, Path(out_dir) / "run" if context.is_main else None, progress=False, context=context
    )
    tensors = {
        name: value.detach().contiguous()
        for name, value in result.network.state_dict().items()
        if "num_batches_tracked" not in name
    }
    save_file(
        tensors,
        str(Path(out_dir) / f"rank{context.rank}.safetensors"),
        metadata={"world_size": str(context.world_size), "steps": str(len(result.history))},
    )
    if context.is_main:
        (Path(out_dir) / "modules.json").write_text(
            json.dumps(sorted({type(m).__name__ for m in result.network.modules()}))
        )
    shutdown_distributed(context)


if __name__ == "__main__":
    main(*sys.argv[1:])
