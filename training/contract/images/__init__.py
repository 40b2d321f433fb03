"""Image files -> model input: the one resize function and the input spec of an image model.

numpy and Pillow only (no torch): the service, also in the slim image, uses the very same code
as training, evaluation and the report, so they can never disagree about an image.
"""
