"""Which frames make a clip: `kvid.preprocessing`'s temporal sampling, under `kvid.data`.

The functions are defined once, in `kvid.preprocessing`, next to the spatial
transform, so training, evaluation, prediction and serving pick frames the same
way. See there for the conventions (stateless seeds, looping short videos).
"""

from kvid.preprocessing import (
    SAMPLINGS,
    clip_starts,
    consecutive_indices,
    draw_frame_step,
    evenly_spaced_clips,
    multi_clip_indices,
    sample_indices,
    uniform_indices,
)

__all__ = [
    "SAMPLINGS",
    "clip_starts",
    "consecutive_indices",
    "draw_frame_step",
    "evenly_spaced_clips",
    "multi_clip_indices",
    "sample_indices",
    "uniform_indices",
]
