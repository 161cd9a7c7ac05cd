"""In-graph serving steps: checks, JPEG decoding, resize, centre crop, outputs.

Everything here is plain TensorFlow (stock ops only), so the exported graph
runs in any TensorFlow Serving binary without kvid installed. Bad requests
fail in an in-graph check whose message names the signature and the problem,
before any frame reaches the network.
"""

from __future__ import annotations

import tensorflow as tf

from kvid.models.preprocessing import preprocess_input
from kvid.models.registry import Preprocessing

JPEG_START = b"\xff\xd8\xff"  # SOI marker, then the first segment's marker
JPEG_END = b"\xff\xd9"  # EOI marker


def check_shape(tensor: tf.Tensor, spec: tf.TensorSpec) -> tf.Tensor:
    """Checks at run time that `tensor` has the rank and fixed sizes of `spec`.

    The signature's input spec alone does not: TF Serving (and a loaded
    signature) feeds request tensors of any shape into the graph, where a wrong
    rank would fail deep inside resizing. `EnsureShape` fails first, with
    "Shape of tensor <name> [got] is not compatible with expected shape [spec]".
    """
    return tf.ensure_shape(tensor, spec.shape, name=f"check_{spec.name}_shape")


def check_clip_sizes(frames: tf.Tensor, signature: str) -> tf.Tensor:
    """Fails with a clear message unless `[..., frames, height, width, 3]` sizes are positive.

    Returns:
        `frames`, only available once the check has passed.
    """
    shape = tf.shape(frames)
    checks = [
        tf.debugging.assert_positive(
            shape[-4], message=f"{signature}: a clip needs at least one frame; got 0 frames"
        ),
        tf.debugging.assert_positive(
            shape[-3] * shape[-2],
            message=f"{signature}: frames must have a positive height and width",
        ),
    ]
    if frames.shape.rank == 6:
        checks.append(
            tf.debugging.assert_positive(
                shape[1], message=f"{signature}: a video needs at least one clip; got 0 clips"
            )
        )
    with tf.control_dependencies(checks):
        return tf.identity(frames)


def decode_jpeg_frames(jpeg_frames: tf.Tensor, signature: str = "jpeg_frames") -> tf.Tensor:
    """Decodes `[batch, frames]` JPEG strings to `[batch, frames, height, width, 3]` uint8.

    Every string must be a whole JPEG file (SOI marker at the start, EOI at the
    end) and all frames must share one size; otherwise an in-graph check fails
    with a message listing the offending `[clip, frame]` indices.
    """
    shape = tf.shape(jpeg_frames)
    non_empty = [
        tf.debugging.assert_positive(
            shape[1], message=f"{signature}: a clip needs at least one frame; got 0 frames"
        ),
        # Decoding maps over the frames, which cannot stack an empty list.
        tf.debugging.assert_positive(
            shape[0], message=f"{signature}: a request needs at least one clip; got 0 clips"
        ),
    ]
    with tf.control_dependencies(non_empty):
        jpeg_frames = tf.identity(jpeg_frames)
    # Prepending two bytes keeps the end slice in range for strings shorter than 2.
    complete = tf.logical_and(
        tf.equal(tf.strings.substr(jpeg_frames, 0, len(JPEG_START)), JPEG_START),
        tf.equal(tf.strings.substr(b"\x00\x00" + jpeg_frames, -2, 2), JPEG_END),
    )
    check_jpeg = tf.debugging.Assert(
        tf.reduce_all(complete),
        [
            f"{signature}: these [clip, frame] entries are not complete JPEG files "
            "(they must start with the SOI marker FFD8FF and end with the EOI marker FFD9):",
            tf.where(tf.logical_not(complete)),
        ],
        summarize=20,
    )
    with tf.control_dependencies([check_jpeg]):
        flat = tf.reshape(jpeg_frames, [-1])
    sizes = tf.map_fn(
        lambda jpeg: tf.io.extract_jpeg_shape(jpeg)[:2],
        flat,
        fn_output_signature=tf.TensorSpec([2], tf.int32),
    )
    same_size = tf.debugging.Assert(
        tf.reduce_all(tf.equal(sizes, sizes[:1])),
        [
            f"{signature}: all frames of a request must have the same height and width; "
            "got [height, width] per frame:",
            sizes,
        ],
        summarize=40,
    )
    with tf.control_dependencies([same_size]):
        decoded = tf.map_fn(
            lambda jpeg: tf.io.decode_jpeg(jpeg, channels=3),
            flat,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
    return tf.reshape(decoded, tf.concat([shape, tf.shape(decoded)[1:]], axis=0))


def resized_size(height: tf.Tensor, width: tf.Tensor, resize: int | tuple[int, int]) -> tf.Tensor:
    """The `[height, width]` frames are resized to before the centre crop.

    An int `resize` is the short side; the long side keeps the aspect ratio and
    is truncated, as torchvision's `Resize(int)` does. A pair is the size itself.
    """
    if not isinstance(resize, int):
        return tf.constant(resize, tf.int32)
    short = tf.cast(tf.minimum(height, width), tf.float64)
    long = tf.cast(tf.maximum(height, width), tf.float64)
    new_long = tf.cast(tf.floor(resize * long / short), tf.int32)
    return tf.where(height <= width, tf.stack([resize, new_long]), tf.stack([new_long, resize]))


def resize_crop_normalize(frames: tf.Tensor, preprocessing: Preprocessing) -> tf.Tensor:
    """Maps `[batch, frames, height, width, 3]` uint8 pixels to the model's input.

    Frames are resized (bilinear, antialiased, in float: no rounding back to
    uint8) to `preprocessing.resize`, centre-cropped to `crop_size` (offsets
    rounded like torchvision's `center_crop`), then scaled and normalised with
    `kvid.preprocess_input`.
    """
    shape = tf.shape(frames)
    images = tf.reshape(tf.cast(frames, tf.float32), tf.concat([[-1], shape[2:]], axis=0))
    size = resized_size(shape[2], shape[3], preprocessing.resize)
    images = tf.image.resize(images, size, method="bilinear", antialias=True)
    crop = preprocessing.crop_size
    top, left = tf.unstack(tf.cast(tf.round(tf.cast(size - crop, tf.float64) / 2.0), tf.int32))
    images = images[:, top : top + crop, left : left + crop, :]
    clips = tf.reshape(images, tf.concat([shape[:2], [crop, crop, 3]], axis=0))
    return tf.convert_to_tensor(preprocess_input(clips, preprocessing))


def prediction_outputs(
    probabilities: tf.Tensor, top_k: int, class_names: tuple[str, ...] | None
) -> dict[str, tf.Tensor]:
    """The outputs every signature returns, from `[batch, classes]` probabilities."""
    top = tf.math.top_k(probabilities, k=top_k)
    outputs = {
        "probabilities": probabilities,
        "top_k_indices": top.indices,
        "top_k_scores": top.values,
    }
    if class_names is not None:
        outputs["top_k_classes"] = tf.gather(tf.constant(class_names), top.indices)
    return outputs
