"""DVS event streams: the ``dvs-events/1`` record format and binning into frames.

numpy only (no torch): the service uses the very same code as training, also in the slim image.
"""
