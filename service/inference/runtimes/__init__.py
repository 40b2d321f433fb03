"""Runtimes run one model version one timestep at a time. The early-exit loop above them is
shared; see ``base.Runtime`` for the contract."""
