"""The sample type every data set yields."""

from __future__ import annotations

import torch

Sample = tuple[torch.Tensor, int]
"""One labelled sample: the network's input (an image [C, H, W] or frames [T, 2, H, W]) and its
class index."""
