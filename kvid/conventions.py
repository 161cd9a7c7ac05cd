"""Every input convention kvid knows, defined once.

A `Preprocessing` says how a model wants its clips. The published weight sets
carry theirs (`kvid.weights`), and a model built with a named set records that
set's; a model without weights records its architecture's default, the one its
paper or reference trains with. Both come from this table, so a convention is
never written twice.
"""

from __future__ import annotations

import dataclasses

from kvid.preprocessing import Preprocessing

TORCHVISION_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's video classification recipe (its r3d_18, mc3_18, r2plus1d_18 weights):
# 16 frames at 15 fps, resized to 128x171, centre crop 112.
TORCHVISION_VIDEO = Preprocessing(
    num_frames=16,
    crop_size=112,
    resize=(128, 171),
    mean=TORCHVISION_MEAN,
    std=TORCHVISION_STD,
    fps=15.0,
)
# "A Closer Look at Spatiotemporal Convolutions for Action Recognition": 8-frame clips,
# torchvision's normalisation, the video's own frame rate.
VIDEO_RESNET_PAPER = dataclasses.replace(TORCHVISION_VIDEO, num_frames=8, fps=None)
# torchvision's s3d weights (their metadata): resize to 256x256, crop 224, and the
# accuracy measured on one 128-frame clip at 15 fps.
TORCHVISION_S3D = Preprocessing(
    num_frames=128,
    crop_size=224,
    resize=(256, 256),
    mean=TORCHVISION_MEAN,
    std=TORCHVISION_STD,
    fps=15.0,
)
# The HowTo100M (MIL-NCE) S3D-G video tower: 32-frame clips, pixels in [0, 1].
HOWTO100M_S3DG = Preprocessing(num_frames=32, crop_size=224, resize=256)
# DeepMind's kinetics-i3d: 64 frames at 25 fps, short side 256, crop 224, pixels in [-1, 1].
DEEPMIND_I3D = Preprocessing(
    num_frames=64, crop_size=224, resize=256, pixel_range=(-1.0, 1.0), fps=25.0
)
# "Learning Spatio-Temporal Representation with Pseudo-3D Residual Networks": an
# ImageNet-initialised ResNet-50 on 224 crops of frames with a short side of 256.
IMAGENET_P3D = Preprocessing(
    num_frames=16, crop_size=224, resize=256, mean=IMAGENET_MEAN, std=IMAGENET_STD
)
