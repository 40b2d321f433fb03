"""firstspike service: early-exit inference over HTTP for latency-coded spiking networks."""
