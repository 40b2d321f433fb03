"""Spiking neuron models: pure step functions and the modules that wrap them."""

from training.neurons.lif import LIFParameters, LIFState, LIFStepOutput, lif_sequence, lif_step
from training.neurons.surrogate import SURROGATES, ArctanSurrogate, SigmoidSurrogate, heaviside

__all__ = [
    "LIFParameters",
    "LIFState",
    "LIFStepOutput",
    "lif_step",
    "lif_sequence",
    "SURROGATES",
    "ArctanSurrogate",
    "SigmoidSurrogate",
    "heaviside",
]
