"""Video classification models, their registry, and the convention each model's clips use."""

from kvid.models import files, flops, i3d, inception, p3d, s3d, video_resnet
from kvid.models.convention import (
    model_convention,
    preprocess_frames,
    preprocess_input,
    weights_convention,
)
from kvid.models.endpoints import feature_extractor
from kvid.models.files import load_model
from kvid.models.i3d import I3D
from kvid.models.p3d import DGP3D, P3D, P3DResNet
from kvid.models.predictions import class_names_for, decode_predictions
from kvid.models.registry import (
    ModelSpec,
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
    "FR2D18",
    "I3D",
    "MC2_18",
    "MC3_18",
    "MC4_18",
    "MC5_18",
    "ModelSpec",
    "P3D",
    "P3DResNet",
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
    "VideoResNet",
    "class_names_for",
    "decode_predictions",
    "feature_extractor",
    "files",
    "flops",
    "get_model",
    "get_preprocessing",
    "get_spec",
    "i3d",
    "inception",
    "list_models",
    "load_model",
    "model_convention",
    "p3d",
    "preprocess_frames",
    "preprocess_input",
    "register_model",
    "s3d",
    "video_resnet",
    "weights_convention",
]
