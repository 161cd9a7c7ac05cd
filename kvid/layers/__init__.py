"""Small serializable Keras layers shared by the model families."""

from kvid.layers.convention import (
    ClipConvention,
    flat_layers,
    model_preprocessing,
    set_model_preprocessing,
)
from kvid.layers.convolution import Conv3D
from kvid.layers.gating import SelfGating
from kvid.layers.normalization import BatchNormalization
from kvid.layers.pooling import WindowMeanPooling3D
from kvid.layers.space_to_depth import SpaceToDepth3D

__all__ = [
    "BatchNormalization",
    "ClipConvention",
    "Conv3D",
    "SelfGating",
    "SpaceToDepth3D",
    "WindowMeanPooling3D",
    "flat_layers",
    "model_preprocessing",
    "set_model_preprocessing",
]
