"""kvid: 3D-CNN video classifiers for Keras 3, exact against their references."""

from kvid import export, models, weights
from kvid.models import (
    FR2D18,
    MC2_18,
    MC3_18,
    MC4_18,
    MC5_18,
    R2D18,
    R3D18,
    R3D34,
    RMC2_18,
    RMC3_18,
    RMC4_18,
    RMC5_18,
    R2Plus1D18,
    R2Plus1D34,
    decode_predictions,
    get_model,
    list_models,
    preprocess_input,
)

__version__ = "0.1.0"

__all__ = [
    "FR2D18",
    "MC2_18",
    "MC3_18",
    "MC4_18",
    "MC5_18",
    "R2D18",
    "R3D18",
    "R3D34",
    "RMC2_18",
    "RMC3_18",
    "RMC4_18",
    "RMC5_18",
    "R2Plus1D18",
    "R2Plus1D34",
    "__version__",
    "decode_predictions",
    "export",
    "get_model",
    "list_models",
    "models",
    "preprocess_input",
    "weights",
]
