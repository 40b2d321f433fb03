"""Robustness to common corruptions (Hendrycks & Dietterich, ICLR 2019): the 15 corruptions at
five severities for any uint8 image, and a reader for the released CIFAR-10-C / CIFAR-100-C
``.npy`` files. numpy and Pillow only; nothing is downloaded."""

from training.robustness.cifar_c import CIFAR_C_CORRUPTIONS, load_cifar_c
from training.robustness.corruptions import (
    CORRUPTION_GROUPS,
    CORRUPTIONS,
    SEVERITIES,
    check_corruption,
    check_severity,
    corrupt,
)

__all__ = [
    "CIFAR_C_CORRUPTIONS",
    "CORRUPTIONS",
    "CORRUPTION_GROUPS",
    "SEVERITIES",
    "check_corruption",
    "check_severity",
    "corrupt",
    "load_cifar_c",
]
