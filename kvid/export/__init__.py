"""Export to TensorFlow Serving: SavedModels with preprocessing in the graph."""

from kvid.export.saved_model import (
    JPEG_FRAMES,
    MULTI_CLIP,
    SERVING_DEFAULT,
    SIGNATURES,
    export_registered_model,
    export_saved_model,
    next_version,
)

__all__ = [
    "JPEG_FRAMES",
    "MULTI_CLIP",
    "SERVING_DEFAULT",
    "SIGNATURES",
    "export_registered_model",
    "export_saved_model",
    "next_version",
]
