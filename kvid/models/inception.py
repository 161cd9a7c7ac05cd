"""The Inception-v1 video network shared by I3D, S3D and S3D-G.

All three references run the same network: a stem (`Conv3d_1a_7x7` ..
`MaxPool3d_3a_3x3`), nine Inception blocks with GoogLeNet's branch widths and
max-pools between them. They differ in how a convolution is made (full 3D,
or separable 1xkxk -> kx1x1), how they pad, their BatchNorm constants, the
self-gating of S3D-G, their head and how they name modules. A `Dialect`
captures those differences; `inception_features` builds the shared network.

Network surgery (Xie et al. 2018, section 4 and figure 2) deflates any of the
11 spatio-temporal layers (`SURGERY_LAYERS`: the stem's 7x7 and 3x3 convs and
the nine blocks) to 2D: temporal kernels become 1 and the block's max-pool
branch pools 1x3x3. The two max-pools with temporal stride 2 stay 3D (the
paper's footnote 4), and a deflated stem keeps its temporal stride, so every
variant sees the same number of frames in every layer.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection

import keras

from kvid.layers import WindowMeanPooling3D
from kvid.models import common

# GoogLeNet's branch widths: (b0 1x1, b1 1x1, b1 3x3, b2 1x1, b2 3x3, b3 1x1 after the pool).
BLOCK_WIDTHS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
STEM = "Conv3d_1a_7x7"
HEAD_WINDOW = (2, 7, 7)  # the reference heads' AvgPool3d window

# The network as rows: (endpoint, kind, arguments). Endpoint names are those of
# DeepMind's I3D and TF-slim's S3D-G, the same in all three models.
LAYOUT = (
    (STEM, "stem", 64),
    ("MaxPool3d_2a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", "conv", (64, 1)),
    ("Conv3d_2c_3x3", "conv", (192, 3)),
    ("MaxPool3d_3a_3x3", "pool", ((1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", "block", BLOCK_WIDTHS["Mixed_3b"]),
    ("Mixed_3c", "block", BLOCK_WIDTHS["Mixed_3c"]),
    ("MaxPool3d_4a_3x3", "pool", ((3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", "block", BLOCK_WIDTHS["Mixed_4b"]),
    ("Mixed_4c", "block", BLOCK_WIDTHS["Mixed_4c"]),
    ("Mixed_4d", "block", BLOCK_WIDTHS["Mixed_4d"]),
    ("Mixed_4e", "block", BLOCK_WIDTHS["Mixed_4e"]),
    ("Mixed_4f", "block", BLOCK_WIDTHS["Mixed_4f"]),
    ("MaxPool3d_5a_2x2", "pool", ((2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", "block", BLOCK_WIDTHS["Mixed_5b"]),
    ("Mixed_5c", "block", BLOCK_WIDTHS["Mixed_5c"]),
)
ENDPOINTS = tuple(row[0] for row in LAYOUT)
# The layers K counts in the paper's figure 2, bottom to top.
SURGERY_LAYERS = (STEM, "Conv3d_2c_3x3", *BLOCK_WIDTHS)
BRANCHES = ("b0", "b1a", "b1b", "b2a", "b2b", "b3a", "b3b")
EXTRA_ARGS_DOC = """
    alpha: width multiplier of every layer (1.0 is the paper's network).
    surgery: network surgery (Xie et al. 2018, figure 2): `None` keeps every
        layer 3D; `"i2d"`, `"bottom_heavy_K"` or `"top_heavy_K"` (K in 0..11)
        or a collection of `kvid.models.inception.SURGERY_LAYERS` names that
        stay 3D; the others get temporal kernels of 1."""


@dataclasses.dataclass(frozen=True)
class WindowHead:
    """The I3D and torchvision-S3D classifier: windowed average, conv, mean.

    The references run AvgPool3d((2, 7, 7), stride 1), dropout, a 1x1x1 conv
    with bias, then average its outputs. Pooling the windows first, then
    classifying, is the same linear map, and it works on clips below the
    reference's minimum size (the windows shrink to fit).

    Attributes:
        dropout: the dropout rate.
        names: the reference's names of the pool, dropout, conv and mean.
    """

    dropout: float
    names: tuple[str, str, str, str]


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How one reference implementation builds and names the shared network.

    Attributes:
        names: endpoint -> the reference's module name (dots as underscores).
        branches: the reference's names for the block parts of `BRANCHES`.
        stem: `(x, filters, name, temporal) -> x`, the first convolution.
        conv: `(x, filters, kernel, name, temporal) -> x`, a stride-1 cubic
            convolution unit with its BatchNorm and ReLU (`kernel` 1 or 3).
        pool: `(x, kernel, strides, name) -> x`, a max-pool.
        gate: `(x, name) -> x` applied to the `Conv3d_2c_3x3` output and to
            every branch output (S3D-G's self-gating), or `None`.
        gate_names: reference names of the gates: after the stem, and a
            format string for the block branches (`{block}`, `{branch}`).
        head: the reference's `WindowHead`, or `None` for a global mean and a
            dense layer named `fc`.
    """

    names: dict[str, str]
    branches: tuple[str, ...]
    stem: Callable
    conv: Callable
    pool: Callable
    gate: Callable | None = None
    gate_names: tuple[str, str] = ("", "")
    head: WindowHead | None = None


def temporal_layers(surgery: str | Collection[str] | None) -> frozenset[str]:
    """Resolves a `surgery` argument to the `SURGERY_LAYERS` that stay 3D.

    Args:
        surgery: `None` (the reference: all 3D); `"i2d"` (all 2D);
            `"bottom_heavy_K"` (3D in the lowest K of the 11 layers, 2D above);
            `"top_heavy_K"` (3D in the highest K); or a collection of names
            from `SURGERY_LAYERS` that stay 3D.

    Returns:
        The names of the layers with temporal kernels.

    Raises:
        ValueError: for an unknown form, K outside 0..11 or unknown names.
    """
    count = len(SURGERY_LAYERS)
    if surgery is None:
        return frozenset(SURGERY_LAYERS)
    if isinstance(surgery, str):
        if surgery == "i2d":
            return frozenset()
        match = re.fullmatch(r"(bottom|top)_heavy_(\d+)", surgery)
        if match and int(match[2]) <= count:
            k = int(match[2])
            chosen = SURGERY_LAYERS[:k] if match[1] == "bottom" else SURGERY_LAYERS[count - k :]
            return frozenset(chosen)
    elif all(isinstance(name, str) and name in SURGERY_LAYERS for name in surgery):
        return frozenset(surgery)
    raise ValueError(
        "`surgery` must be None, 'i2d', 'bottom_heavy_K' or 'top_heavy_K' (K in 0..11), or "
        f"names from {SURGERY_LAYERS}. Received: surgery={surgery!r}"
    )


def inception_block(x, widths, dialect, name, temporal):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3; pool -> 1x1), concatenated."""
    names = dict(zip(BRANCHES, (f"{name}_{branch}" for branch in dialect.branches), strict=True))
    b0 = dialect.conv(x, widths[0], 1, names["b0"], temporal)
    b1 = dialect.conv(x, widths[1], 1, names["b1a"], temporal)
    b1 = dialect.conv(b1, widths[2], 3, names["b1b"], temporal)
    b2 = dialect.conv(x, widths[3], 1, names["b2a"], temporal)
    b2 = dialect.conv(b2, widths[4], 3, names["b2b"], temporal)
    pool_kernel = (3, 3, 3) if temporal else (1, 3, 3)
    b3 = keras.layers.MaxPooling3D(pool_kernel, strides=1, padding="same", name=names["b3a"])(x)
    b3 = dialect.conv(b3, widths[5], 1, names["b3b"], temporal)
    branches = [b0, b1, b2, b3]
    if dialect.gate is not None:
        branches = [
            dialect.gate(branch, dialect.gate_names[1].format(block=name, branch=index))
            for index, branch in enumerate(branches)
        ]
    return keras.layers.Concatenate(name=name)(branches)


def inception_features(x, dialect, *, alpha, temporal):
    """The network from the stem to `Mixed_5c`.

    Every endpoint is the output of a layer named as in `ENDPOINTS`.

    Args:
        x: the input clips.
        dialect: the reference's `Dialect`.
        alpha: width multiplier.
        temporal: names of `SURGERY_LAYERS` that keep temporal kernels.
    """
    for endpoint, kind, args in LAYOUT:
        name = dialect.names[endpoint]
        is_3d = endpoint in temporal
        if kind == "stem":
            x = dialect.stem(x, common.scaled(args, alpha), name, is_3d)
        elif kind == "conv":
            filters, kernel = args
            x = dialect.conv(x, common.scaled(filters, alpha), kernel, name, is_3d)
            if endpoint == "Conv3d_2c_3x3" and dialect.gate is not None:
                x = dialect.gate(x, dialect.gate_names[0])
        elif kind == "pool":
            x = dialect.pool(x, *args, name)
        else:
            widths = [common.scaled(width, alpha) for width in args]
            x = inception_block(x, widths, dialect, name, is_3d)
        if name != endpoint:
            x = keras.layers.Identity(name=endpoint)(x)
    return x


def window_classifier(x, head, classes, classifier_activation):
    """The `WindowHead` classifier on the `Mixed_5c` features."""
    pool, dropout, conv, mean = head.names
    x = WindowMeanPooling3D(HEAD_WINDOW, name=pool)(x)
    x = keras.layers.Dropout(head.dropout, name=dropout)(x)
    x = keras.layers.Conv3D(classes, 1, name=conv)(x)
    x = keras.layers.Flatten(name=mean)(x)
    return keras.layers.Activation(classifier_activation, name="predictions")(x)


def build_model(
    key,
    dialect,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    alpha,
    surgery,
):
    """Checks the keras.applications arguments, then builds features and head."""
    input_shape = common.check_arguments(
        include_top=include_top,
        weights=weights,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        alpha=alpha,
        default_shape=(None, None, None, 3),
    )
    temporal = temporal_layers(surgery)
    clips = common.clip_input(input_shape, input_tensor)
    x = common.record_convention(clips, key, weights)
    x = inception_features(x, dialect, alpha=alpha, temporal=temporal)
    if include_top and dialect.head is not None:
        x = window_classifier(x, dialect.head, classes, classifier_activation)
    else:
        x = common.classification_head(
            x,
            include_top=include_top,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
        )
    model = keras.Model(common.model_inputs(clips, input_tensor), x, name=name)
    head_layers = (dialect.head.names[2],) if dialect.head else ("fc",)
    return common.finish_model(
        model,
        key=key,
        weights=weights,
        include_top=include_top,
        classes=classes,
        head_layers=head_layers,
    )
