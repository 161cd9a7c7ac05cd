"""Video ResNets: R3D, MCx, rMCx, R2D, f-R2D and R(2+1)D (Tran et al. 2018).

One `VideoResNet` builds them all: each family is a choice of convolution kind
for the stem and each of the four stages, as torchvision's conv makers do.

Layer names are torchvision's module paths with dots replaced by underscores
(`layer1.0.conv1.0` -> `layer1_0_conv1_0`), so torchvision state dicts load
by name with `kvid.weights.load_torch_state_dict`. Padding is torchvision's
symmetric padding, not Keras' asymmetric `"same"` at stride 2.
"""

from __future__ import annotations

import keras

from kvid.conventions import TORCHVISION_VIDEO, VIDEO_RESNET_PAPER
from kvid.models import common
from kvid.models.common import batch_norm, conv3d
from kvid.models.registry import ModelSpec, register_model

CONV_3D = "3d"  # 3x3x3
CONV_2D = "2d"  # 1x3x3, never strides in time
CONV_2PLUS1D = "2plus1d"  # 1x3x3 -> BN -> ReLU -> 3x1x1
STEM_FOLDED = "folded"  # R2D: the clip's frames folded into the first conv's channels

CONV_KINDS = (CONV_3D, CONV_2D, CONV_2PLUS1D)
STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
ENDPOINTS = ("stem", "layer1", "layer2", "layer3", "layer4")


def downsample_stride(kind, stride):
    """The shortcut's stride: 2D convolutions never stride in time."""
    return (1, stride, stride) if kind == CONV_2D else (stride, stride, stride)


def projection_shortcut(x, filters, stride, name):
    """The 1x1x1 conv + BN shortcut of a block that changes width or stride."""
    x = conv3d(x, filters, (1, 1, 1), stride, (0, 0, 0), f"{name}_0")
    return batch_norm(x, f"{name}_1")


def block_conv(x, kind, filters, mid_filters, stride, name):
    """One 3x3x3-equivalent convolution of a block, of the given `kind`."""
    if kind == CONV_3D:
        return conv3d(x, filters, (3, 3, 3), (stride,) * 3, (1, 1, 1), name)
    if kind == CONV_2D:
        return conv3d(x, filters, (1, 3, 3), (1, stride, stride), (0, 1, 1), name)
    x = conv3d(x, mid_filters, (1, 3, 3), (1, stride, stride), (0, 1, 1), f"{name}_0")
    x = batch_norm(x, f"{name}_1")
    x = keras.layers.ReLU(name=f"{name}_2")(x)
    return conv3d(x, filters, (3, 1, 1), (stride, 1, 1), (1, 0, 0), f"{name}_3")


def basic_block(x, kind, filters, stride, name):
    """Conv -> BN -> ReLU -> conv -> BN, plus the shortcut, then ReLU."""
    in_filters = x.shape[-1]
    # torchvision sizes the (2+1)D middle width once per block, from its input
    # and output widths, so the 3D and (2+1)D blocks have ~equal parameters.
    mid_filters = (in_filters * filters * 27) // (in_filters * 9 + 3 * filters)
    shortcut = x
    if stride != 1 or in_filters != filters:
        shortcut = projection_shortcut(
            x, filters, downsample_stride(kind, stride), f"{name}_downsample"
        )
    y = block_conv(x, kind, filters, mid_filters, stride, f"{name}_conv1_0")
    y = batch_norm(y, f"{name}_conv1_1")
    y = keras.layers.ReLU(name=f"{name}_conv1_2")(y)
    y = block_conv(y, kind, filters, mid_filters, 1, f"{name}_conv2_0")
    y = batch_norm(y, f"{name}_conv2_1")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu")(y)


def stem(x, kind, filters, alpha):
    """The first convolution group (conv1 in the paper's table 1)."""
    frames = x.shape[1]
    if kind == CONV_2PLUS1D:
        x = conv3d(x, common.scaled(45, alpha), (1, 7, 7), (1, 2, 2), (0, 3, 3), "stem_0")
        x = batch_norm(x, "stem_1")
        x = keras.layers.ReLU(name="stem_2")(x)
        x = conv3d(x, filters, (3, 1, 1), (1, 1, 1), (1, 0, 0), "stem_3")
        x = batch_norm(x, "stem_4")
        return keras.layers.ReLU(name="stem_5")(x)
    kernel, padding = {
        CONV_3D: ((3, 7, 7), (1, 3, 3)),
        CONV_2D: ((1, 7, 7), (0, 3, 3)),
        # A 2D convolution over frames*channels inputs is a 3D convolution whose
        # kernel spans the whole clip in time, unpadded.
        STEM_FOLDED: ((frames, 7, 7), (0, 3, 3)),
    }[kind]
    x = conv3d(x, filters, kernel, (1, 2, 2), padding, "stem_0")
    x = batch_norm(x, "stem_1")
    return keras.layers.ReLU(name="stem_2")(x)


def VideoResNet(
    depth,
    conv_kinds,
    *,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=400,
    classifier_activation="softmax",
    alpha=1.0,
    name="video_resnet",
    key=None,
):
    """Builds a video ResNet of `depth` 18 or 34 with the given conv kinds.

    Args:
        depth: 18 or 34.
        conv_kinds: five kinds, for the stem and the four stages: `"3d"`,
            `"2d"` or `"2plus1d"`; the stem may also be `"folded"` (R2D).
        include_top: whether to include the fully connected classifier.
        weights: `None`, a weights file, or a weights name registered for `key`.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional `(frames, height, width, channels)`.
        pooling: `None`, `"avg"` or `"max"`, with `include_top=False`.
        classes: number of classes, with `include_top=True`.
        classifier_activation: activation of the classifier, `None` for logits.
        alpha: width multiplier of every layer (1.0 is the paper's network).
        name: the model's name.
        key: the registry key, used to look up named weights.

    Returns:
        A functional `keras.Model`.
    """
    if depth not in BLOCKS_PER_STAGE:
        raise ValueError(f"`depth` must be 18 or 34. Received: depth={depth!r}")
    conv_kinds = tuple(conv_kinds)
    if (
        len(conv_kinds) != 5
        or conv_kinds[0] not in (*CONV_KINDS, STEM_FOLDED)
        or any(k not in CONV_KINDS for k in conv_kinds[1:])
    ):
        raise ValueError(
            "`conv_kinds` must name the stem's and each of the 4 stages' convolution, from "
            f"{CONV_KINDS} ('folded' also allowed for the stem). Received: conv_kinds={conv_kinds}"
        )
    folded = conv_kinds[0] == STEM_FOLDED
    input_shape = common.check_arguments(
        include_top=include_top,
        weights=weights,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        alpha=alpha,
        default_shape=(8 if folded else None, None, None, 3),
    )
    if folded and input_shape[0] is None:
        raise ValueError(
            "R2D folds the frames into channels, so the frame count must be fixed. "
            f"Received: input_shape={input_shape}"
        )

    clips = common.clip_input(input_shape, input_tensor)
    widths = [common.scaled(w, alpha) for w in STAGE_WIDTHS]
    x = stem(common.record_convention(clips, key, weights), conv_kinds[0], widths[0], alpha)
    x = keras.layers.Identity(name="stem")(x)
    for stage, (kind, width, blocks) in enumerate(
        zip(conv_kinds[1:], widths, BLOCKS_PER_STAGE[depth], strict=True), start=1
    ):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            x = basic_block(x, kind, width, stride, f"layer{stage}_{block}")
        x = keras.layers.Identity(name=f"layer{stage}")(x)
    outputs = common.classification_head(
        x,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    model = keras.Model(common.model_inputs(clips, input_tensor), outputs, name=name)
    return common.finish_model(
        model, key=key, weights=weights, include_top=include_top, classes=classes
    )


def _mixed(x, reverse=False):
    """MCx: 3D below group x, 2D from it; rMCx the other way round (groups 1-5)."""
    low, high = (CONV_2D, CONV_3D) if reverse else (CONV_3D, CONV_2D)
    return tuple(low if group < x else high for group in range(1, 6))


_PAPER = (
    "Tran et al., A Closer Look at Spatiotemporal Convolutions for Action Recognition, CVPR 2018"
)
_TV_LAYOUT = "torchvision's VideoResNet with 34-layer stages (no public weights or fixture)"
_TABLE_2 = "parameter counts of the paper's table 2 (no public reference implementation)"
# torchvision publishes Kinetics-400 weights (16-frame clips) for these; the others
# default to the paper's 8-frame clips, with the same normalisation.
_TORCHVISION_WEIGHTED = ("r3d_18", "mc3_18", "r2plus1d_18")

# key: (factory name, title, depth, conv kinds of (stem, layer1..layer4), reference)
VARIANTS = {
    "r3d_18": ("R3D18", "R3D-18", 18, (CONV_3D,) * 5, "torchvision r3d_18"),
    "r3d_34": ("R3D34", "R3D-34", 34, (CONV_3D,) * 5, _TV_LAYOUT),
    **{
        f"mc{x}_18": (
            f"MC{x}_18",
            f"MC{x}",
            18,
            _mixed(x),
            "torchvision mc3_18" if x == 3 else _TABLE_2,
        )
        for x in range(2, 6)
    },
    **{
        f"rmc{x}_18": (f"RMC{x}_18", f"rMC{x}", 18, _mixed(x, reverse=True), _TABLE_2)
        for x in range(2, 6)
    },
    "r2d_18": ("R2D18", "R2D", 18, (STEM_FOLDED,) + (CONV_2D,) * 4, _TABLE_2),
    "fr2d_18": ("FR2D18", "f-R2D", 18, (CONV_2D,) * 5, _TABLE_2),
    "r2plus1d_18": ("R2Plus1D18", "R(2+1)D-18", 18, (CONV_2PLUS1D,) * 5, "torchvision r2plus1d_18"),
    "r2plus1d_34": ("R2Plus1D34", "R(2+1)D-34", 34, (CONV_2PLUS1D,) * 5, _TV_LAYOUT),
}


def _make_factory(key, func_name, title, depth, conv_kinds, reference):
    """A thin public factory for one registry entry."""

    def factory(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=400,
        classifier_activation="softmax",
        name=key,
        alpha=1.0,
    ):
        return VideoResNet(
            depth,
            conv_kinds,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            alpha=alpha,
            name=name,
            key=key,
        )

    factory.__name__ = factory.__qualname__ = func_name
    factory.__module__ = __name__
    preprocessing = TORCHVISION_VIDEO if key in _TORCHVISION_WEIGHTED else VIDEO_RESNET_PAPER
    factory.__doc__ = common.BASE_DOCSTRING.format(
        title=title,
        paper=_PAPER,
        reference=reference,
        key=key,
        convention="pixels scaled to [0, 1], then normalised with torchvision's Kinetics mean/std",
        frames_note=" (except the frame count for R2D)" if conv_kinds[0] == STEM_FOLDED else "",
        default_shape=(8 if conv_kinds[0] == STEM_FOLDED else None, None, None, 3),
        extra_args="\n    alpha: width multiplier (1.0 is the paper's network).",
    )
    register_model(
        ModelSpec(
            name=key,
            factory=factory,
            preprocessing=preprocessing,
            reference=reference,
            test_kwargs={"alpha": 1 / 16},
            endpoints=ENDPOINTS,
        )
    )
    return factory


_FACTORIES = {spec[0]: _make_factory(key, *spec) for key, spec in VARIANTS.items()}
R3D18 = _FACTORIES["R3D18"]
R3D34 = _FACTORIES["R3D34"]
MC2_18 = _FACTORIES["MC2_18"]
MC3_18 = _FACTORIES["MC3_18"]
MC4_18 = _FACTORIES["MC4_18"]
MC5_18 = _FACTORIES["MC5_18"]
RMC2_18 = _FACTORIES["RMC2_18"]
RMC3_18 = _FACTORIES["RMC3_18"]
RMC4_18 = _FACTORIES["RMC4_18"]
RMC5_18 = _FACTORIES["RMC5_18"]
R2D18 = _FACTORIES["R2D18"]
FR2D18 = _FACTORIES["FR2D18"]
R2Plus1D18 = _FACTORIES["R2Plus1D18"]
R2Plus1D34 = _FACTORIES["R2Plus1D34"]
