"""SavedModel export for TensorFlow Serving, preprocessing included.

The exported graph takes raw pixels (or JPEG bytes) and does the model's
resize, centre crop and normalisation itself, so clients need neither kvid
nor the model's input convention. Layout is TF Serving's:
`export_dir/<version>/saved_model.pb`. A version folder appears only when
complete (written under a temporary name and renamed), so a server watching
`export_dir` never loads a half-written export.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import keras
import tensorflow as tf

from kvid import preprocessing as preprocessing_lib
from kvid.export import serving_ops
from kvid.io import atomic
from kvid.models import ModelSpec, class_names_for, get_model, model_convention
from kvid.preprocessing import Preprocessing

SERVING_DEFAULT = "serving_default"
JPEG_FRAMES = "jpeg_frames"
MULTI_CLIP = "multi_clip"
SIGNATURES = (SERVING_DEFAULT, JPEG_FRAMES, MULTI_CLIP)
DEFAULT_TOP_K = 5


def next_version(export_dir: str | os.PathLike) -> int:
    """One more than the largest integer version folder in `export_dir` (1 if none).

    The temporary folders of unfinished exports are not versions.
    """
    if not os.path.isdir(export_dir):
        return 1
    versions = [int(name) for name in os.listdir(export_dir) if re.fullmatch(r"\d+", name)]
    return max(versions, default=0) + 1


def _check_tensorflow_backend(model: keras.Model) -> None:
    """A SavedModel is a TensorFlow graph: only the TensorFlow backend traces one."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    weights = f"{model.name}.weights.h5"
    raise RuntimeError(
        "kvid.export writes TensorFlow SavedModels and needs the TensorFlow Keras backend. "
        f"Received: keras.backend.backend()={backend!r}. Save the weights here with "
        f"`model.save_weights({weights!r})` (they are the same on every backend), then export "
        "from a process started with KERAS_BACKEND=tensorflow: build the same model, "
        f"`model.load_weights({weights!r})`, `kvid.export.export_saved_model(model, ...)`."
    )


def _output_activation(model: keras.Model) -> str | None:
    """The activation of the model's last layer: `"softmax"`, `"sigmoid"`, `"linear"` or other."""
    layer = model.outputs[0]._keras_history.operation
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    return keras.activations.serialize(activation) if activation is not None else None


def _outputs_logits(model: keras.Model) -> bool:
    """Whether the model's classifier outputs logits (True) or probabilities (False)."""
    name = _output_activation(model)
    if name in ("softmax", "sigmoid"):
        return False
    if name == "linear":
        return True
    layer = model.outputs[0]._keras_history.operation
    raise ValueError(
        "Cannot tell whether the model outputs logits or probabilities from its last "
        f"layer {layer.name!r} (activation {name!r}). Pass `logits=True` or `logits=False`."
    )


def _check_classifier(model, preprocessing):
    """Validates that `model` is a one-input, one-output clip classifier the export fits."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "The exporter needs a model with one input and one output. Received: "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    input_shape, output_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(input_shape) != 5 or input_shape[-1] != 3:
        raise ValueError(
            "The exporter needs clips (batch, frames, height, width, 3) as input. "
            f"Received: input shape {input_shape}"
        )
    if len(output_shape) != 2 or output_shape[-1] is None:
        raise ValueError(
            "The exporter needs a classifier with (batch, classes) outputs (include_top=True). "
            f"Received: output shape {output_shape}"
        )
    crop, resize = preprocessing.crop_shape, preprocessing.resize
    if min(resize if isinstance(resize, tuple) else (resize,)) < min(crop):
        raise ValueError(
            f"Frames are resized to {resize}, smaller than the crop size {crop}. "
            f"Received: preprocessing={preprocessing}"
        )
    return input_shape[1], output_shape[-1]


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    *,
    version: int | None = None,
    class_names: Sequence[str] | None = None,
    preprocessing: str | ModelSpec | Preprocessing | None = None,
    logits: bool | None = None,
    top_k: int = DEFAULT_TOP_K,
    multi_label: bool | None = None,
) -> str:
    """Exports `model` as a TF Serving SavedModel with preprocessing in the graph.

    Three signatures, each with one input and the same outputs:

    - `serving_default`: `frames`, uint8 `[batch, frames, height, width, 3]`
      of any spatial size, resized and centre-cropped in the graph;
    - `jpeg_frames`: `jpeg_frames`, string `[batch, frames]` JPEG files;
    - `multi_clip`: `clips`, uint8 `[batch, clips, frames, height, width, 3]`,
      scored per video: the mean of the clips' probabilities.

    Outputs: `probabilities` `[batch, classes]` float32, `top_k_indices` int32
    and `top_k_scores` float32 `[batch, top_k]`, and `top_k_classes` string
    `[batch, top_k]` when class names are known. The frame count is free
    (at least 1) unless the model fixes it. A multi-label model's signatures
    output `sigmoid_probabilities` instead of `probabilities` (each class's
    own probability: they do not sum to 1), and `multi_clip` takes the
    maximum over the clips (SlowFast's Charades protocol) instead of the mean.

    Args:
        model: a Keras clip classifier (one input, `(batch, classes)` output).
        export_dir: the model's folder; the export goes to `export_dir/<version>`.
        version: the version folder, an int; defaults to the next unused one.
        class_names: one name per class (`kvid.models.class_names_for`
            decides the default: Kinetics-400's for 400 classes, else
            `class_0`, ...).
        preprocessing: a registry key, `ModelSpec` or `Preprocessing` that
            overrides the convention the model records
            (`kvid.models.model_convention` decides, fitted to the model's
            input size, as for training, evaluation and prediction).
        logits: whether the model outputs logits (built with
            `classifier_activation=None`): the graph then applies a softmax so
            `probabilities` are probabilities. Defaults to reading it from the
            last layer's activation (softmax, sigmoid or linear).
        top_k: how many best classes the `top_k_*` outputs hold (at most `classes`).
        multi_label: independent classes (a sigmoid, applied in the graph to
            logits); defaults to whether the last layer's activation is a sigmoid.

    The export is written to a temporary folder in `export_dir` and renamed
    to its version when complete (TF Serving's advice): a kill part-way leaves
    the previous versions as they were, and the next export removes the
    temporary folder.

    Returns:
        The path of the written version folder.

    Raises:
        RuntimeError: under a Keras backend other than TensorFlow (JAX,
            PyTorch): save `.weights.h5` and export from a TensorFlow process.
        ValueError: for a model the export does not fit, unknown preprocessing,
            class names of the wrong length, a bad `top_k` or an existing version.

    Example:
        A tiny Keras classifier fed r3d_18's clips (a kvid model records its
        convention, so `preprocessing` can be left out):

        >>> model = keras.Sequential([keras.Input((8, 32, 32, 3)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(2, activation="softmax")])
        >>> kvid.export.export_saved_model(model, "saved_models/tiny", preprocessing="r3d_18")
        'saved_models/tiny/1'
    """
    _check_tensorflow_backend(model)
    preprocessing = model_convention(model, preprocessing)
    num_frames, classes = _check_classifier(model, preprocessing)
    class_names = class_names_for(classes, class_names)
    if not isinstance(top_k, int) or not 1 <= top_k:
        raise ValueError(f"`top_k` must be a positive integer. Received: top_k={top_k!r}")
    top_k = min(top_k, classes)
    if logits is None:
        logits = _outputs_logits(model)
    if multi_label is None:
        multi_label = _output_activation(model) == "sigmoid"
    key = serving_ops.SIGMOID_PROBABILITIES if multi_label else serving_ops.PROBABILITIES
    if version is None:
        version = next_version(export_dir)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"`version` must be a non-negative int. Received: version={version!r}")
    path = os.path.join(os.fspath(export_dir), str(version))
    if os.path.exists(path):
        raise ValueError(f"The export folder already exists; pick another version: {path}")

    clip_shape = [num_frames, None, None, 3]

    # One function, traced once, that the three signatures call: the model's graph is saved
    # once, not once per signature.
    @tf.function(input_signature=[tf.TensorSpec([None, *clip_shape], tf.uint8)])
    def probabilities(frames):
        clips = preprocessing_lib.preprocess_frames(frames, preprocessing)
        scores = tf.cast(model(clips, training=False), tf.float32)
        if not logits:
            return scores
        return tf.sigmoid(scores) if multi_label else tf.nn.softmax(scores)

    specs = {
        SERVING_DEFAULT: tf.TensorSpec([None, *clip_shape], tf.uint8, name="frames"),
        JPEG_FRAMES: tf.TensorSpec([None, num_frames], tf.string, name="jpeg_frames"),
        MULTI_CLIP: tf.TensorSpec([None, None, *clip_shape], tf.uint8, name="clips"),
    }

    def serve_frames(frames):
        frames = serving_ops.check_shape(frames, specs[SERVING_DEFAULT])
        frames = serving_ops.check_clip_sizes(frames, SERVING_DEFAULT)
        return serving_ops.prediction_outputs(probabilities(frames), top_k, class_names, key)

    def serve_jpeg(jpeg_frames):
        jpeg_frames = serving_ops.check_shape(jpeg_frames, specs[JPEG_FRAMES])
        frames = serving_ops.decode_jpeg_frames(jpeg_frames, JPEG_FRAMES)
        return serving_ops.prediction_outputs(probabilities(frames), top_k, class_names, key)

    def serve_multi_clip(clips):
        clips = serving_ops.check_shape(clips, specs[MULTI_CLIP])
        clips = serving_ops.check_clip_sizes(clips, MULTI_CLIP)
        shape = tf.shape(clips)
        per_clip = probabilities(tf.reshape(clips, tf.concat([[-1], shape[2:]], 0)))
        per_video = tf.reshape(per_clip, [shape[0], shape[1], classes])
        combine = tf.reduce_max if multi_label else tf.reduce_mean
        return serving_ops.prediction_outputs(combine(per_video, axis=1), top_k, class_names, key)

    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, serve in (
        (SERVING_DEFAULT, serve_frames),
        (JPEG_FRAMES, serve_jpeg),
        (MULTI_CLIP, serve_multi_clip),
    ):
        archive.add_endpoint(name, serve, [specs[name]])
    # The leftovers of killed exports go first; a running export's stay.
    atomic.remove_leftovers(export_dir)
    with atomic.atomic_folder(path) as temporary:
        archive.write_out(temporary, verbose=False)
    return path


def export_registered_model(
    model_name: str,
    *,
    weights: str | None = None,
    classes: int = 400,
    alpha: float | None = None,
    export_dir: str | os.PathLike | None = None,
    **kwargs,
) -> str:
    """Builds the registry model `model_name` and exports it (see `export_saved_model`).

    Args:
        model_name: a registry key, e.g. `"r2plus1d_18"`.
        weights: the model's `weights` argument (a file or a registered name).
        classes: the number of classes of the weights.
        alpha: the width multiplier of the weights, for factories that take
            one; `None` keeps the factory's default.
        export_dir: defaults to `saved_models/<model_name>`.
        **kwargs: `version`, `class_names`, `top_k` of `export_saved_model`.

    Returns:
        The path of the written version folder.
    """
    width = {} if alpha is None else {"alpha": alpha}
    model = get_model(model_name, weights=weights, classes=classes, **width)
    export_dir = os.path.join("saved_models", model_name) if export_dir is None else export_dir
    return export_saved_model(model, export_dir, **kwargs)
