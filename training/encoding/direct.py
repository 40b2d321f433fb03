"""Direct (analog current) input for the rate-coded baseline and the ANN.

Phi (conv + batchnorm) of the static image is computed once and injected as the same input
current at every timestep; the first activation layer of the network (LIF for the rate-coded
SNN, ReLU for the ANN) turns it into spikes or activations.
"""

from __future__ import annotations

import torch

from training.encoding.stem import FeatureStem


class DirectCurrentEncoder(FeatureStem):
    """Phi (conv + batchnorm) of the image as the same analog current at every timestep.

    Args:
        in_channels: the image's channels.
        out_channels: the feature maps Phi makes.
        kernel_size: the convolution's square kernel.
        stride: the convolution's stride.
    """

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Phi(I), computed once per input.

        Args:
            image: the normalised images [B, C, H, W].

        Returns:
            The currents [B, C', H', W'].
        """
        return self.phi(image)

    def input_sequence(self, features: torch.Tensor, timesteps: int) -> torch.Tensor:
        """The same current at every timestep.

        Args:
            features: Phi(I) [B, ...].
            timesteps: T.

        Returns:
            [T, B, ...], a view that repeats ``features``.
        """
        return features.unsqueeze(0).expand(timesteps, *features.shape)

    def input_at(self, features: torch.Tensor, timestep: int | torch.Tensor, timesteps: int) -> torch.Tensor:
        """The input of one timestep: the current itself, whatever the timestep.

        Args:
            features: Phi(I) [B, ...].
            timestep: the 1-based timestep (unused).
            timesteps: T (unused).

        Returns:
            ``features``.
        """
        return features
