"""Small serializable Keras layers shared by the model families."""

from kvid.layers.gating import SelfGating
from kvid.layers.pooling import WindowMeanPooling3D
from kvid.layers.space_to_depth import SpaceToDepth3D

__all__ = ["SelfGating", "SpaceToDepth3D", "WindowMeanPooling3D"]
