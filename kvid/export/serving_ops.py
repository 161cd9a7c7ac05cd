"""In-graph serving steps: request checks, JPEG decoding, outputs.

The resize, centre crop and normalisation are `kvid.preprocessing.preprocess_frames`,
the transform evaluation and prediction use too. Everything here and there is
plain TensorFlow (stock ops only), so the exported graph runs in any
TensorFlow Serving binary without kvid installed. Bad requests
fail in an in-graph check whose message names the signature and the problem,
before any frame reaches the network.
"""

from __future__ import annotations

import tensorflow as tf

from kvid import preprocessing

JPEG_START = b"\xff\xd8\xff"  # SOI marker, then the first segment's marker
JPEG_END = b"\xff\xd9"  # EOI marker
PROBABILITIES = "probabilities"
SIGMOID_PROBABILITIES = "sigmoid_probabilities"


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
        decoded = preprocessing.decode_jpeg(flat)
    return tf.reshape(decoded, tf.concat([shape, tf.shape(decoded)[1:]], axis=0))


def prediction_outputs(
    probabilities: tf.Tensor,
    top_k: int,
    class_names: tuple[str, ...] | None,
    key: str = PROBABILITIES,
) -> dict[str, tf.Tensor]:
    """The outputs every signature returns, from `[batch, classes]` probabilities.

    `key` names the probabilities: `PROBABILITIES` (softmax) or
    `SIGMOID_PROBABILITIES` (a multi-label model's independent classes).
    """
    top = tf.math.top_k(probabilities, k=top_k)
    outputs = {
        key: probabilities,
        "top_k_indices": top.indices,
        "top_k_scores": top.values,
    }
    if class_names is not None:
        outputs["top_k_classes"] = tf.gather(tf.constant(class_names), top.indices)
    return outputs
