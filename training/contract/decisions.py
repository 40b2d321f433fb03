"""How a decision was reached: the exit reasons the trainer's evaluation counts and the service
returns. Standard library only, so the torch-free service and the trainer share one spelling."""

from __future__ import annotations

from typing import Final

FIRST_SPIKE: Final = "first_spike"  # an output neuron fired: decided at that timestep, eqs (10)-(11)
NO_SPIKE: Final = "no_spike"  # no output spike by T: the argmax of the membranes at T
TIME_MEAN: Final = "time_mean"  # rate-coded networks and ANNs: the time-mean output current at T
