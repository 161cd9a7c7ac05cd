"""Which frames make a clip: pure functions of a frame count and a stateless seed.

Every function takes the number of frames available (a Python int or a scalar
tensor) and returns `int32` frame indices, so the same code samples PyAV videos
(before decoding) and TFRecords (before JPEG decoding), eagerly or inside
`tf.data`. A `seed` is a `[2]` integer tensor as for `tf.random.stateless_*`;
`seed=None` means evaluation: the deterministic central choice.

Short videos never fail: indices past the end wrap around, i.e. the video is
*looped* (as TF Model Garden's `sample_sequence` does), so motion stays
natural instead of freezing on the last frame. A single-frame video gives a
clip of that frame repeated.
"""

from __future__ import annotations

import tensorflow as tf

SAMPLINGS = ("consecutive", "uniform")


def _as_count(num_available):
    return tf.maximum(tf.cast(num_available, tf.int32), 1)


def _split(seed, n: int):
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n))


def draw_frame_step(frame_step, seed=None):
    """Returns the step between sampled frames.

    Args:
        frame_step: an int, or an inclusive range `(low, high)` for speed
            augmentation: training draws a step per clip ("sample more,
            subsample"), evaluation uses the rounded middle.
        seed: stateless seed, or `None` for evaluation.

    Returns:
        A scalar `int32` tensor.
    """
    if isinstance(frame_step, int):
        return tf.constant(frame_step, tf.int32)
    low, high = frame_step
    if not 1 <= low <= high:
        raise ValueError(
            f"`frame_step` must be a positive int or a range (low, high) with 1 <= low <= high. "
            f"Received: frame_step={frame_step}"
        )
    if seed is None:
        return tf.constant((low + high) // 2, tf.int32)
    return tf.random.stateless_uniform([], seed, low, high + 1, dtype=tf.int32)


def consecutive_indices(num_available, num_frames: int, frame_step=1, seed=None):
    """A clip of `num_frames` frames `frame_step` apart.

    Training (`seed` given) starts at a random frame (temporal jitter);
    evaluation centres the clip in the video.

    Args:
        num_available: frames in the video.
        num_frames: clip length.
        frame_step: int, or `(low, high)` range for speed augmentation.
        seed: stateless seed, or `None` for the centred clip.

    Returns:
        `int32 [num_frames]` indices in `[0, num_available)`.
    """
    count = _as_count(num_available)
    if seed is not None:
        step_seed, start_seed = _split(seed, 2)
    else:
        step_seed = start_seed = None
    step = draw_frame_step(frame_step, step_seed)
    span = (num_frames - 1) * step + 1
    slack = tf.maximum(count - span, 0)
    if start_seed is None:
        start = slack // 2
    else:
        start = tf.random.stateless_uniform([], start_seed, 0, slack + 1, dtype=tf.int32)
    return (start + tf.range(num_frames) * step) % count


def uniform_indices(num_available, num_frames: int, seed=None):
    """TSN-style segment sampling: one frame from each of `num_frames` equal segments.

    Training picks a random frame in each segment (temporal jitter);
    evaluation takes each segment's middle frame.

    Args:
        num_available: frames in the video.
        num_frames: clip length (number of segments).
        seed: stateless seed, or `None` for the segments' middles.

    Returns:
        `int32 [num_frames]` indices in `[0, num_available)`, non-decreasing.
    """
    count = tf.cast(_as_count(num_available), tf.float32)
    edges = tf.range(num_frames + 1, dtype=tf.float32) * count / num_frames
    low, high = edges[:-1], edges[1:]
    if seed is None:
        offsets = tf.fill([num_frames], 0.5)
    else:
        offsets = tf.random.stateless_uniform([num_frames], seed)
    positions = tf.floor(low + offsets * (high - low))
    return tf.minimum(tf.cast(positions, tf.int32), tf.cast(count, tf.int32) - 1)


def evenly_spaced_clips(num_available, num_frames: int, frame_step=1, num_clips: int = 10):
    """`num_clips` consecutive clips with evenly spaced starts, for video-level evaluation.

    Args:
        num_available: frames in the video.
        num_frames: clip length.
        frame_step: int step between frames (a range uses its middle).
        num_clips: clips per video (10 in the papers).

    Returns:
        `int32 [num_clips, num_frames]`.
    """
    count = _as_count(num_available)
    step = draw_frame_step(frame_step)
    span = (num_frames - 1) * step + 1
    slack = tf.cast(tf.maximum(count - span, 0), tf.float32)
    # Centres of num_clips equal parts of the possible starts, as in SlowFast's multi-view test.
    parts = (tf.range(num_clips, dtype=tf.float32) + 0.5) / num_clips
    starts = tf.cast(tf.round(parts * slack), tf.int32)
    return (starts[:, None] + tf.range(num_frames)[None, :] * step) % count


def sample_indices(
    num_available, num_frames: int, frame_step=1, sampling: str = "consecutive", seed=None
):
    """Dispatches to `consecutive_indices` or `uniform_indices`.

    Args:
        num_available: frames in the video.
        num_frames: clip length.
        frame_step: for `"consecutive"`: int or `(low, high)` range.
        sampling: `"consecutive"` or `"uniform"`.
        seed: stateless seed (training), or `None` (evaluation).

    Returns:
        `int32 [num_frames]` indices.
    """
    if sampling == "consecutive":
        return consecutive_indices(num_available, num_frames, frame_step, seed)
    if sampling == "uniform":
        return uniform_indices(num_available, num_frames, seed)
    raise ValueError(f"`sampling` must be one of {SAMPLINGS}. Received: sampling={sampling!r}")


def multi_clip_indices(
    num_available, num_frames: int, frame_step=1, sampling: str = "consecutive", num_clips=1
):
    """Evaluation indices of `num_clips` clips: evenly spaced clips, or uniform sampling.

    `"uniform"` sampling covers the whole video already, so its clips are
    shifted by a fraction of a segment each instead.

    Returns:
        `int32 [num_clips, num_frames]`.
    """
    if sampling == "consecutive":
        return evenly_spaced_clips(num_available, num_frames, frame_step, num_clips)
    if sampling != "uniform":
        raise ValueError(f"`sampling` must be one of {SAMPLINGS}. Received: sampling={sampling!r}")
    count = tf.cast(_as_count(num_available), tf.float32)
    segment = count / num_frames
    shifts = (tf.range(num_clips, dtype=tf.float32) + 0.5) / num_clips
    positions = tf.range(num_frames, dtype=tf.float32)[None, :] + shifts[:, None]
    indices = tf.cast(tf.floor(positions * segment), tf.int32)
    return tf.minimum(indices, tf.cast(count, tf.int32) - 1)
