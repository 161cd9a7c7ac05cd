"""The published weight sets kvid registers: torchvision's video models, DeepMind's I3D.

Every file is the one its authors publish, read as it is (no re-hosted
conversion), and verified against the hash they publish. Accuracies are the
published ones, with the protocol they were measured under: torchvision's
ResNets score ~10 points more top-1 video-level (5 clips) than clip-level.
"""

from __future__ import annotations

import functools
from importlib import resources

from kvid.conventions import DEEPMIND_I3D, TORCHVISION_S3D, TORCHVISION_VIDEO
from kvid.weights.registry import KINETICS_400, Metric, WeightFile, WeightSpec, register_weights

K400_VAL = "Kinetics-400 validation"
TORCHVISION_SOURCE = "torchvision (pytorch/vision), trained with its video classification recipe"
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision)"
TORCHVISION_DOCS = "torchvision model documentation (`{}` KINETICS400_V1)"
TORCHVISION_VIDEO_LEVEL = "video-level: 5 clips x 1 centre crop, 16 frames at 15 fps"
TORCHVISION_CARD = "torchvision model card (Papers with Code), clip-level"
DEEPMIND_RAW = (
    "https://raw.githubusercontent.com/deepmind/kinetics-i3d/master/data/checkpoints/rgb_imagenet/"
)


@functools.cache
def kinetics400_categories() -> tuple[str, ...]:
    """The 400 Kinetics class names in output order (DeepMind's `label_map.txt`)."""
    text = resources.files("kvid.weights").joinpath("kinetics400_labels.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _torchvision_resnet(model, url, sha256, clip, video):
    """A torchvision Kinetics-400 ResNet: clip-level (its model card) and video-level metrics."""
    return WeightSpec(
        model=model,
        name=KINETICS_400,
        files=(WeightFile(url, sha256),),
        classes=400,
        categories=kinetics400_categories(),
        preprocessing=TORCHVISION_VIDEO,
        metrics=(
            Metric(K400_VAL, *clip, "clip-level: 1 clip x 1 crop, 16 frames", TORCHVISION_CARD),
            Metric(K400_VAL, *video, TORCHVISION_VIDEO_LEVEL, TORCHVISION_DOCS.format(model)),
        ),
        source=TORCHVISION_SOURCE,
        licence=TORCHVISION_LICENCE,
    )


PUBLISHED = (
    _torchvision_resnet(
        "r3d_18",
        "https://download.pytorch.org/models/r3d_18-b3b3357e.pth",
        "b3b3357ead25631ec9c57362ff2128a92d0427e01e2cd184951a44380c3f2e9d",
        clip=(52.75, 75.45),
        video=(63.2, 83.479),
    ),
    _torchvision_resnet(
        "mc3_18",
        "https://download.pytorch.org/models/mc3_18-a90a0ba3.pth",
        "a90a0ba35ca1242d15b77511ff28bfb29cc596988b5ea36081042f8e2f54212b",
        clip=(53.90, 76.29),
        video=(63.96, 84.13),
    ),
    _torchvision_resnet(
        "r2plus1d_18",
        "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth",
        "91a641e6c2ab531d1aca5f4321b4d802ec5c3babc15df855cdb6e39c6a1107c8",
        clip=(57.50, 78.81),
        video=(67.463, 86.175),
    ),
    WeightSpec(
        model="s3d",
        name=KINETICS_400,
        # Only the first 8 digits of the SHA-256 are published, in the file name
        # (torch.hub's convention): the download is checked against that prefix.
        files=(
            WeightFile(
                "https://download.pytorch.org/models/s3d-d76dad2f.pth", "d76dad2f", "sha256_prefix"
            ),
        ),
        classes=400,
        categories=kinetics400_categories(),
        preprocessing=TORCHVISION_S3D,
        metrics=(
            Metric(
                K400_VAL,
                68.368,
                88.05,
                "clip-level: 1 clip x 1 crop, 128 frames at 15 fps",
                TORCHVISION_DOCS.format("s3d"),
            ),
        ),
        source=TORCHVISION_SOURCE + " (SHA-256 published only as the prefix d76dad2f)",
        licence=TORCHVISION_LICENCE,
    ),
    WeightSpec(
        model="i3d",
        name=KINETICS_400,
        files=(
            WeightFile(
                DEEPMIND_RAW + "model.ckpt.index",
                "5ab1058b8f4f89a896c01f67c0a4c96a31548af7",
                "git_blob_sha1",
            ),
            WeightFile(
                DEEPMIND_RAW + "model.ckpt.data-00000-of-00001",
                "2958652e0c9c48a65010c0ebda5c9cfd4edc7c18",
                "git_blob_sha1",
            ),
        ),
        classes=400,
        categories=kinetics400_categories(),
        preprocessing=DEEPMIND_I3D,
        metrics=(
            Metric(
                "Kinetics-400 test",
                71.1,
                89.3,
                "video-level: the whole video, 1 centre crop (RGB stream)",
                "Carreira & Zisserman 2017, RGB-I3D row of the Kinetics table",
            ),
        ),
        source="DeepMind kinetics-i3d: RGB I3D, ImageNet-inflated, trained on Kinetics-400 "
        "(TF checkpoint `data/checkpoints/rgb_imagenet`; hashes are GitHub's git blob SHA-1)",
        licence="Apache-2.0 (deepmind/kinetics-i3d)",
    ),
)

for _spec in PUBLISHED:
    register_weights(_spec)
