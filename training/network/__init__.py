"""Spiking network assembly: layers that run k timesteps at once, architectures, the network."""
