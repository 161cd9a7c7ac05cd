"""The TF Serving contract of `kvid.export.export_saved_model`.

Exports go through a subprocess that imports only TensorFlow (tf_only_client.py),
as TF Serving sees them, and are compared with the Keras model's own predictions
on clips resized and cropped here, independently of the exporter.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

import kvid
import kvid.export

SERVING_MODELS = ["r3d_18", "s3dg"]  # one tiny model per family: video ResNets, Inception
CLASS_NAMES = ("archery", "bowling", "cooking", "dancing", "juggling")
CLIENT = Path(__file__).with_name("tf_only_client.py")
TOLERANCE = 1e-5
FRAMES = 9


def synthetic_clip(rng, frames, height, width):
    """A moving colour gradient with noise: JPEG-compressible, like real video."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    base = np.stack([x * 255 / width, y * 255 / height, (x + y + 8 * t) % 256], axis=-1)
    noisy = base + rng.normal(0, 12, base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def reference_inputs(frames, preprocessing):
    """Resize, centre crop and normalisation written out for `[batch, T, H, W, 3]` uint8."""
    batch, num_frames, height, width, _ = frames.shape
    if isinstance(preprocessing.resize, int):
        short, long = sorted((height, width))
        long = int(preprocessing.resize * long / short)
        size = (preprocessing.resize, long) if height <= width else (long, preprocessing.resize)
    else:
        size = preprocessing.resize
    images = frames.reshape(-1, height, width, 3).astype(np.float32)
    images = tf.image.resize(images, size, method="bilinear", antialias=True).numpy()
    crop = preprocessing.crop_size
    top, left = round((size[0] - crop) / 2), round((size[1] - crop) / 2)
    images = images[:, top : top + crop, left : left + crop]
    clips = images.reshape(batch, num_frames, crop, crop, 3)
    return keras.ops.convert_to_numpy(kvid.preprocess_input(clips, preprocessing))


def keras_probabilities(model, frames, preprocessing):
    """Softmax of the (logits) model's prediction on `frames`, in float64."""
    logits = keras.ops.convert_to_numpy(model(reference_inputs(frames, preprocessing)))
    return scipy.special.softmax(logits.astype(np.float64), axis=-1)


def assert_top_k(indices, scores, expected, class_names=None, classes=None):
    """Checks top-k outputs against expected probabilities, whatever order near-ties take.

    Tiny random models give near-uniform probabilities, so the order of classes
    within 1e-5 of each other is not a meaningful thing to compare.
    """
    k = indices.shape[1]
    best = -np.sort(-expected, axis=1)[:, :k]
    np.testing.assert_allclose(scores, best, atol=TOLERANCE)
    np.testing.assert_allclose(np.take_along_axis(expected, indices, axis=1), best, atol=TOLERANCE)
    assert all(len(set(row)) == k for row in indices.tolist())
    if class_names is not None:
        np.testing.assert_array_equal(classes.astype(str), np.array(class_names)[indices])


def run_tf_only_client(saved_model_dir, requests, out_dir):
    """Calls the export from a fresh TensorFlow-only process; returns (outputs, report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    requests_path = out_dir / "requests.npz"
    np.savez(requests_path, **requests)
    subprocess.run(
        [sys.executable, "-I", str(CLIENT), str(saved_model_dir), str(requests_path), str(out_dir)],
        check=True,
        cwd=out_dir,
        capture_output=True,
        timeout=240,
    )
    report = json.loads((out_dir / "report.json").read_text())
    with np.load(out_dir / "outputs.npz") as outputs:
        return dict(outputs), report


def encode_jpeg(frames):
    """`[batch, T, H, W, 3]` uint8 -> `[batch, T]` JPEG bytes, and their decoded pixels."""
    jpegs = np.array(
        [[tf.io.encode_jpeg(frame, quality=90).numpy() for frame in clip] for clip in frames]
    )
    decoded = np.stack(
        [
            np.stack(
                [
                    tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE").numpy()
                    for jpeg in row
                ]
            )
            for row in jpegs
        ]
    )
    return jpegs, decoded


@pytest.fixture(scope="module", params=SERVING_MODELS)
def served(request, tmp_path_factory):
    """Exports a tiny logits model, calls it TF-only, and computes what to expect."""
    key = request.param
    spec = kvid.models.get_spec(key)
    preprocessing = spec.preprocessing
    model = kvid.get_model(key, **spec.test_kwargs, classes=5, classifier_activation=None)
    root = tmp_path_factory.mktemp(key)
    path = kvid.export.export_saved_model(model, root / key, class_names=CLASS_NAMES)

    rng = np.random.default_rng(0)
    frames = np.stack([synthetic_clip(rng, FRAMES, 100, 150) for _ in range(2)])  # upscaled
    videos = np.stack(
        [np.stack([synthetic_clip(rng, FRAMES, 150, 200) for _ in range(2)]) for _ in range(2)]
    )  # downscaled: checks the antialiasing too
    jpegs, decoded = encode_jpeg(frames)
    expected = {
        "ok:serving_default": keras_probabilities(model, frames, preprocessing),
        "ok:jpeg_frames": keras_probabilities(model, decoded, preprocessing),
        "ok:multi_clip": keras_probabilities(
            model, videos.reshape(-1, *videos.shape[2:]), preprocessing
        )
        .reshape(2, 2, -1)
        .mean(axis=1),
    }
    requests = {
        "ok:serving_default": frames,
        "ok:jpeg_frames": jpegs,
        "ok:multi_clip": videos,
        "rank4:serving_default": frames[0],
        "float:serving_default": frames.astype(np.float32),
        "channels4:serving_default": np.concatenate([frames, frames[..., :1]], axis=-1),
        "zero_frames:serving_default": frames[:, :0],
        "zero_clips:multi_clip": videos[:, :0],
        "zero_frames:multi_clip": videos[:, :, :0],
        "zero_frames:jpeg_frames": jpegs[:, :0],
        "zero_clips:jpeg_frames": jpegs[:0],
        "not_jpeg:jpeg_frames": np.array([[jpegs[0, 0], b"GIF89a not a jpeg"]]),
        "truncated:jpeg_frames": np.array([[jpegs[0, 0], jpegs[0, 1][:200]]]),
        "mixed_sizes:jpeg_frames": np.array(
            [[jpegs[0, 0], tf.io.encode_jpeg(frames[0, 1, :50]).numpy()]]
        ),
    }
    outputs, report = run_tf_only_client(path, requests, root / "client")
    return {
        "model": model,
        "path": Path(path),
        "outputs": outputs,
        "report": report,
        "expected": expected,
        "frames": frames,
    }


def test_export_uses_tf_serving_layout(served):
    assert served["path"].name == "1"
    assert (served["path"] / "saved_model.pb").is_file()
    assert (served["path"] / "variables").is_dir()


def test_client_process_cannot_import_kvid(served):
    assert served["report"]["kvid_importable"] is False


@pytest.mark.parametrize("signature", kvid.export.SIGNATURES)
def test_signature_matches_keras_model(served, signature):
    outputs, expected = served["outputs"], served["expected"][f"ok:{signature}"]
    probabilities = outputs[f"ok:{signature}:probabilities"]
    assert probabilities.shape == expected.shape
    assert np.abs(probabilities - expected).max() <= TOLERANCE
    assert_top_k(
        outputs[f"ok:{signature}:top_k_indices"],
        outputs[f"ok:{signature}:top_k_scores"],
        expected,
        CLASS_NAMES,
        outputs[f"ok:{signature}:top_k_classes"],
    )


def test_every_signature_has_one_input_and_the_same_outputs(served):
    signatures = served["report"]["signatures"]
    assert set(signatures) == set(kvid.export.SIGNATURES)
    inputs = {name: signatures[name]["inputs"] for name in kvid.export.SIGNATURES}
    assert inputs == {
        "serving_default": ["frames"],
        "jpeg_frames": ["jpeg_frames"],
        "multi_clip": ["clips"],
    }
    for signature in signatures.values():
        assert signature["outputs"] == [
            "probabilities",
            "top_k_classes",
            "top_k_indices",
            "top_k_scores",
        ]


BAD_REQUESTS = {
    "rank4:serving_default": rf"Shape of tensor frames \[{FRAMES},100,150,3\] is not compatible "
    r"with expected shape \[\?,\?,\?,\?,3\]",
    "float:serving_default": r"expected to be a uint8 tensor but is a float tensor",
    "channels4:serving_default": rf"Shape of tensor frames \[2,{FRAMES},100,150,4\] is not",
    "zero_frames:serving_default": r"serving_default: a clip needs at least one frame; got 0",
    "zero_clips:multi_clip": r"multi_clip: a video needs at least one clip; got 0 clips",
    "zero_frames:multi_clip": r"multi_clip: a clip needs at least one frame; got 0",
    "zero_frames:jpeg_frames": r"jpeg_frames: a clip needs at least one frame; got 0",
    "zero_clips:jpeg_frames": r"jpeg_frames: a request needs at least one clip; got 0 clips",
    "not_jpeg:jpeg_frames": r"jpeg_frames: these \[clip, frame\] entries are not complete JPEG "
    r"files .*\] \[\[0 1\]\]",
    "truncated:jpeg_frames": r"not complete JPEG files .*\] \[\[0 1\]\]",
    "mixed_sizes:jpeg_frames": r"jpeg_frames: all frames of a request must have the same height "
    r"and width; got \[height, width\] per frame:\] \[\[100 150\]\s*\[50 150\]\]",
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_fails_with_a_clear_message(served, case):
    errors = served["report"]["errors"]
    assert case in errors, f"{case} did not fail"
    assert re.search(BAD_REQUESTS[case], errors[case]), errors[case]


def test_only_bad_requests_fail(served):
    assert set(served["report"]["errors"]) == set(BAD_REQUESTS)


def test_graph_uses_only_stock_tensorflow_ops(served):
    assert served["report"]["unregistered_ops"] == []


def saved_model_cli_signatures(path):
    """Parses `saved_model_cli show --all`: {signature: {'inputs': {key: (dtype, shape)}, ...}}."""
    cli = Path(sys.executable).with_name("saved_model_cli")
    text = subprocess.run(
        [str(cli), "show", "--dir", str(path), "--all"],
        check=True,
        capture_output=True,
        text=True,
        timeout=240,
    ).stdout
    parsed = {}
    for block in re.split(r"\n(?=signature_def\[)", text)[1:]:
        name = re.match(r"signature_def\['(\w+)'\]", block).group(1)
        tensors = re.findall(
            r"(input|output)s\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))", block
        )
        parsed[name] = {
            f"{kind}s": {key: (dtype, shape) for k, key, dtype, shape in tensors if k == kind}
            for kind in ("input", "output")
        }
    return parsed


# The model-independent checks run on the video ResNet alone.
@pytest.mark.parametrize("served", ["r3d_18"], indirect=True)
def test_saved_model_cli_lists_the_documented_signatures(served):
    signatures = saved_model_cli_signatures(served["path"])
    outputs = {
        "probabilities": ("DT_FLOAT", "(-1, 5)"),
        "top_k_indices": ("DT_INT32", "(-1, 5)"),
        "top_k_scores": ("DT_FLOAT", "(-1, 5)"),
        "top_k_classes": ("DT_STRING", "(-1, 5)"),
    }
    for name, inputs in {
        "serving_default": {"frames": ("DT_UINT8", "(-1, -1, -1, -1, 3)")},
        "jpeg_frames": {"jpeg_frames": ("DT_STRING", "(-1, -1)")},
        "multi_clip": {"clips": ("DT_UINT8", "(-1, -1, -1, -1, -1, 3)")},
    }.items():
        assert signatures[name] == {"inputs": inputs, "outputs": outputs}


@pytest.mark.parametrize("served", ["r3d_18"], indirect=True)
def test_keras_file_round_trips_and_exports_the_same(served, tmp_path):
    model = served["model"]
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    clips = reference_inputs(served["frames"], kvid.models.get_preprocessing(model.name))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(clips)), keras.ops.convert_to_numpy(model(clips))
    )

    # The restored model keeps its registry name, so the exporter finds its preprocessing.
    path = kvid.export.export_saved_model(restored, tmp_path / "export", class_names=CLASS_NAMES)
    result = tf.saved_model.load(path).signatures["serving_default"](
        frames=tf.constant(served["frames"])
    )
    np.testing.assert_allclose(
        result["probabilities"].numpy(),
        served["outputs"]["ok:serving_default:probabilities"],
        atol=TOLERANCE,
    )
