"""kvid: 3D-CNN video classifiers for Keras 3, exact against their references."""

# First, before anything imports TensorFlow: oneDNN's kernels on every x86 CPU.
from kvid import _onednn

_onednn.configure()

# schedules: registered with Keras, so the checkpoints kvid writes load after `import kvid`.
from kvid import data, export, models, preprocessing, schedules, weights  # noqa: E402
from kvid.models import (  # noqa: E402
    DGP3D,
    FR2D18,
    I3D,
    MC2_18,
    MC3_18,
    MC4_18,
    MC5_18,
    P3D,
    R2D18,
    R3D18,
    R3D34,
    RMC2_18,
    RMC3_18,
    RMC4_18,
    RMC5_18,
    S3D,
    S3DG,
    R2Plus1D18,
    R2Plus1D34,
    decode_predictions,
    get_model,
    list_models,
    preprocess_input,
)
from kvid.preprocessing import Preprocessing  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "DGP3D",
    "I3D",
    "P3D",
    "S3D",
    "S3DG",
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
    "Preprocessing",
    "__version__",
    "data",
    "decode_predictions",
    "export",
    "get_model",
    "list_models",
    "models",
    "preprocess_input",
    "preprocessing",
    "schedules",
    "weights",
]
