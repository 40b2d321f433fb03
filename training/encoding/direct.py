"""Direct (analog current) input for the rate-coded baseline and the ANN.

Phi (conv + batchnorm) of the static image is computed once and injected as the same input
current at every timestep; the first activation layer of the network (LIF for the rate-coded
SNN, ReLU for the ANN) turns it into spikes or activations.
"""

from __future__ import annotations

import torch

from training.encoding.stem import FeatureStem


class DirectCurrentEncoder(FeatureStem):
    def features(self, image: torch.Tensor) -> torch.Tensor:
        return self.phi(image)

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        return features.unsqueeze(0).expand(timesteps, *features.shape)

    def input_at(self, features: torch.Tensor, timestep: int | torch.Tensor, timesteps: int) -> torch.Tensor:
        return features
