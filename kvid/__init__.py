"""kvid: 3D-CNN video classifiers for Keras 3, exact against their references."""

# First, before anything imports TensorFlow: oneDNN's kernels on every x86 CPU.
from kvid import _onednn

_onednn.import_tensorflow()

# Every subpackage, bottom to top (see docs/architecture.md): `kvid.training.train(...)` and
# the others work after `import kvid`, and every class kvid saves in a `.keras` file (layers,
# schedules) is registered with Keras, so what kvid writes loads in safe mode.
from kvid import (  # noqa: E402
    data,
    evaluation,
    export,
    inference,
    io,
    layers,
    metrics,
    models,
    planning,
    plots,
    preprocessing,
    schedules,
    training,
    weights,
)
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
    preprocess_frames,
    preprocess_input,
)
from kvid.preprocessing import Preprocessing  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "DGP3D",
    "FR2D18",
    "I3D",
    "MC2_18",
    "MC3_18",
    "MC4_18",
    "MC5_18",
    "P3D",
    "Preprocessing",
    "R2D18",
    "R2Plus1D18",
    "R2Plus1D34",
    "R3D18",
    "R3D34",
    "RMC2_18",
    "RMC3_18",
    "RMC4_18",
    "RMC5_18",
    "S3D",
    "S3DG",
    "__version__",
    "data",
    "decode_predictions",
    "evaluation",
    "export",
    "get_model",
    "inference",
    "io",
    "layers",
    "list_models",
    "metrics",
    "models",
    "planning",
    "plots",
    "preprocess_frames",
    "preprocess_input",
    "preprocessing",
    "schedules",
    "training",
    "weights",
]
