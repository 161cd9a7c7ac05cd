"""Video classification models and their registry."""

from kvid.models import flops, i3d, inception, p3d, s3d, video_resnet
from kvid.models.endpoints import feature_extractor
from kvid.models.i3d import I3D
from kvid.models.p3d import DGP3D, P3D, P3DResNet
from kvid.models.preprocessing import decode_predictions, kinetics400_labels, preprocess_input
from kvid.models.registry import (
    ModelSpec,
    Preprocessing,
    get_model,
    get_preprocessing,
    get_spec,
    list_models,
    register_model,
)
from kvid.models.s3d import S3D, S3DG
from kvid.models.video_resnet import (
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
    VideoResNet,
)

__all__ = [
    "DGP3D",
    "I3D",
    "P3D",
    "P3DResNet",
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
    "ModelSpec",
    "Preprocessing",
    "R2Plus1D18",
    "R2Plus1D34",
    "VideoResNet",
    "decode_predictions",
    "feature_extractor",
    "flops",
    "get_model",
    "get_preprocessing",
    "get_spec",
    "i3d",
    "inception",
    "kinetics400_labels",
    "p3d",
    "list_models",
    "preprocess_input",
    "register_model",
    "s3d",
    "video_resnet",
]
