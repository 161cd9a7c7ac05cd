"""The registered published sets: every row of issue 11's table, with its metadata."""

import dataclasses
import pathlib

import pytest

import kvid
from kvid.weights import get_weights_spec

LABELS = pathlib.Path(kvid.__file__).parent / "weights" / "kinetics400_labels.txt"
TABLE = {
    "r3d_18": ("r3d_18-b3b3357e.pth", "sha256",
               "b3b3357ead25631ec9c57362ff2128a92d0427e01e2cd184951a44380c3f2e9d"),
    "mc3_18": ("mc3_18-a90a0ba3.pth", "sha256",
               "a90a0ba35ca1242d15b77511ff28bfb29cc596988b5ea36081042f8e2f54212b"),
    "r2plus1d_18": ("r2plus1d_18-91a641e6.pth", "sha256",
                    "91a641e6c2ab531d1aca5f4321b4d802ec5c3babc15df855cdb6e39c6a1107c8"),
    "s3d": ("s3d-d76dad2f.pth", "sha256_prefix", "d76dad2f"),
}  # fmt: skip


def test_every_published_set_is_listed():
    assert kvid.weights.list_weights() == [
        "i3d/kinetics400",
        "mc3_18/kinetics400",
        "r2plus1d_18/kinetics400",
        "r3d_18/kinetics400",
        "s3d/kinetics400",
    ]


@pytest.mark.parametrize("model", sorted(TABLE))
def test_torchvision_sets_carry_the_published_file_and_hash(model):
    spec = get_weights_spec(model, "kinetics400")
    (file,) = spec.files
    name, algorithm, digest = TABLE[model]
    assert file.url == f"https://download.pytorch.org/models/{name}"
    assert (file.algorithm, file.hash) == (algorithm, digest)
    assert spec.licence and spec.source


def test_deepmind_i3d_carries_both_checkpoint_files_with_git_blob_hashes():
    spec = get_weights_spec("i3d", "kinetics400")
    assert [(f.file_name, f.algorithm, f.hash) for f in spec.files] == [
        ("model.ckpt.index", "git_blob_sha1", "5ab1058b8f4f89a896c01f67c0a4c96a31548af7"),
        ("model.ckpt.data-00000-of-00001", "git_blob_sha1",
         "2958652e0c9c48a65010c0ebda5c9cfd4edc7c18"),
    ]  # fmt: skip
    assert spec.files[0].url.startswith("https://raw.githubusercontent.com/deepmind/kinetics-i3d/")
    (metric,) = spec.metrics
    assert (metric.top1, metric.top5, metric.dataset) == (71.1, 89.3, "Kinetics-400 test")


@pytest.mark.parametrize("model", ["r3d_18", "mc3_18", "r2plus1d_18", "s3d", "i3d"])
def test_sets_carry_categories_convention_and_metrics_with_protocol(model):
    spec = get_weights_spec(model, "kinetics400")
    labels = [line for line in LABELS.read_text().splitlines() if line]
    assert list(spec.categories) == labels and spec.classes == 400
    convention = kvid.models.get_preprocessing(model)
    # The model's convention; only s3d's clip length differs (its metric uses 128 frames).
    assert dataclasses.replace(spec.preprocessing, num_frames=convention.num_frames) == convention
    assert spec.metrics and all(
        m.protocol.split(":")[0] in ("clip-level", "video-level") for m in spec.metrics
    )


def test_resnet_sets_report_clip_and_video_level_accuracy():
    spec = get_weights_spec("r2plus1d_18", "kinetics400")
    assert [(m.protocol.split(":")[0], m.top1, m.top5) for m in spec.metrics] == [
        ("clip-level", 57.5, 78.81),
        ("video-level", 67.463, 86.175),
    ]


def test_decode_predictions_uses_the_categories():
    import numpy as np

    spec = get_weights_spec("i3d", "kinetics400")
    scores = np.zeros((1, 400), "float32")
    scores[0, 227] = 1
    (top,) = kvid.decode_predictions(scores, top=1, weights=("i3d", "kinetics400"))
    assert top == [(227, "playing cricket", 1.0)] and spec.categories[227] == "playing cricket"
