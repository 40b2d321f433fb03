"""The service must not import training-only code (DESIGN.md: datasets, optimisers, trainers)."""

import subprocess
import sys


def test_serving_imports_no_training_only_modules():
    probe = (
        "import sys; import service.app, service.inference.runtimes.torch_runtime, service.inference.runtimes.onnx_runtime, benchmarks.early_exit; "
        "banned = [m for m in sys.modules if m.startswith(('training.data', 'training.trainer', "
        "'training.losses', 'training.config', 'training.evaluate', 'training.distributed', 'sklearn', "
        "'torchvision'))]; print(','.join(sorted(banned)))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == ""
