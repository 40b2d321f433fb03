"""The contract between training and serving, torch-free: what a stored model promises.

Training writes it and the service reads it, also where torch is not installed (the slim
image): the typed manifest and the model store's layout (``manifest``), the event stream format
and its binning into frames (``events``), image decoding and model-input preparation
(``images``), the energy model (``energy``), the decision outcomes (``decisions``) and the
optional-dependency map (``extras``). numpy, Pillow and pydantic only.
"""
