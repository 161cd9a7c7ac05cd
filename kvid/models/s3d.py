"""S3D and S3D-G: separable Inception-v1 (Xie et al. 2018), with self-gating for S3D-G.

Every 3x3x3 convolution becomes 1x3x3 -> BN -> ReLU -> 3x1x1 -> BN -> ReLU.

`S3D` is torchvision's `s3d`: its stem (1x7x7 stride (1,2,2), then 7x1x1
stride (2,1,1)), its symmetric padding, its head (AvgPool (2,7,7) stride 1,
dropout, 1x1x1 conv, mean). Layer names are torchvision's module paths
(`features.5.branch1.1.0.0` -> `features_5_branch1_1_0_0`).

`S3DG` is the video tower of the HowTo100M (MIL-NCE) S3D-G port
(antoine77340/S3D_HowTo100M `s3dg.py`), which is not torchvision's S3D plus
gating: its stem is one full 3x7x7 conv with stride 2 (or, as in the
released weights, a 2x4x4 conv after a space-to-depth fold), BN eps 1e-5,
gating maps with a bias, max-pools padded `max(k - s, 0)` at the back with
`ceil_mode`, and a global mean then a dense layer as head.
"""

from __future__ import annotations

import keras

from kvid.conventions import HOWTO100M_S3DG, TORCHVISION_S3D
from kvid.layers import Conv3D, SelfGating, SpaceToDepth3D
from kvid.models import common, inception
from kvid.models.registry import ModelSpec, register_model

PAPER = (
    "Xie et al., Rethinking Spatiotemporal Feature Learning: Speed-Accuracy Trade-offs in Video "
    "Classification, ECCV 2018"
)

# torchvision's s3d ----------------------------------------------------------------
S3D_BN = (1e-3, 0.999)  # epsilon, Keras momentum (torch's momentum=0.001)
S3D_REFERENCE = "torchvision s3d"


def _conv_norm_act(x, filters, kernel, strides, padding, name):
    """Conv3dNormActivation of torchvision: conv `{name}_0`, BN `_1`, ReLU `_2`."""
    x = common.conv3d(x, filters, kernel, strides, padding, f"{name}_0")
    x = common.batch_norm(x, f"{name}_1", epsilon=S3D_BN[0], momentum=S3D_BN[1])
    return keras.layers.ReLU(name=f"{name}_2")(x)


def _tv_conv(x, filters, kernel, name, temporal):
    """A 1x1x1 conv unit, or a TemporalSeparableConv (its temporal half if `temporal`)."""
    if kernel == 1:
        return _conv_norm_act(x, filters, (1, 1, 1), (1, 1, 1), (0, 0, 0), name)
    pad = kernel // 2
    x = _conv_norm_act(x, filters, (1, kernel, kernel), (1, 1, 1), (0, pad, pad), f"{name}_0")
    if temporal:
        x = _conv_norm_act(x, filters, (kernel, 1, 1), (1, 1, 1), (pad, 0, 0), f"{name}_1")
    return x


def _tv_stem(x, filters, name, temporal):
    """features.0: 1x7x7 stride (1,2,2) then 7x1x1 stride (2,1,1).

    Deflated, the spatial conv takes the temporal stride.
    """
    if not temporal:
        return _conv_norm_act(x, filters, (1, 7, 7), (2, 2, 2), (0, 3, 3), f"{name}_0")
    x = _conv_norm_act(x, filters, (1, 7, 7), (1, 2, 2), (0, 3, 3), f"{name}_0")
    return _conv_norm_act(x, filters, (7, 1, 1), (2, 1, 1), (3, 0, 0), f"{name}_1")


def _tv_pool(x, kernel, strides, name):
    """MaxPool3d with torch's symmetric padding (k - 1) // 2.

    Zero padding equals torch's -inf padding: every pool input is post-ReLU.
    """
    padding = tuple(((k - 1) // 2,) * 2 for k in kernel)
    if any(p for p, _ in padding):
        x = keras.layers.ZeroPadding3D(padding, name=f"{name}_pad")(x)
    return keras.layers.MaxPooling3D(kernel, strides, name=name)(x)


S3D_DIALECT = inception.Dialect(
    names={endpoint: f"features_{index}" for index, endpoint in enumerate(inception.ENDPOINTS)},
    branches=(
        "branch0",
        "branch1_0",
        "branch1_1",
        "branch2_0",
        "branch2_1",
        "branch3_0",
        "branch3_1",
    ),
    stem=_tv_stem,
    conv=_tv_conv,
    pool=_tv_pool,
    head=inception.WindowHead(
        dropout=0.2, names=("avgpool", "classifier_0", "classifier_1", "classifier_mean")
    ),
)


# The HowTo100M S3D-G video tower ---------------------------------------------------
S3DG_BN = (1e-5, 0.9)  # torch defaults
S3DG_REFERENCE = (
    "the S3D-G video tower of antoine77340/S3D_HowTo100M s3dg.py (standard stem; "
    "space_to_depth=True matches its released weights' stem)"
)


def _st_bn_relu(x, index, name):
    """STConv3D's `bn{index}` and ReLU after `conv{index}`."""
    x = common.batch_norm(x, f"{name}_bn{index}", epsilon=S3DG_BN[0], momentum=S3DG_BN[1])
    return keras.layers.ReLU(name=f"{name}_relu{index}")(x)


def _st_unit_conv(filters, kernel, name):
    """One bias-free "same" convolution of STConv3D."""
    return Conv3D(filters, kernel, padding="same", use_bias=False, name=name)


def _st_conv(x, filters, kernel, name, temporal):
    """STConv3D: `conv1` (1x1x1, or 1xkxk when separable) then `conv2` (kx1x1)."""
    x = _st_unit_conv(filters, (1, kernel, kernel), f"{name}_conv1")(x)
    x = _st_bn_relu(x, 1, name)
    if kernel > 1 and temporal:
        x = _st_unit_conv(filters, (kernel, 1, 1), f"{name}_conv2")(x)
        x = _st_bn_relu(x, 2, name)
    return x


def _st_stem(x, filters, name, temporal):
    """conv1: one full 3x7x7 conv, stride 2, torch padding (1, 3, 3)."""
    kernel, padding = ((3, 7, 7), (1, 3, 3)) if temporal else ((1, 7, 7), (0, 3, 3))
    x = common.conv3d(x, filters, kernel, (2, 2, 2), padding, f"{name}_conv1")
    return _st_bn_relu(x, 1, name)


def _space_to_depth_stem(x, filters, name, temporal):
    """conv1 of the released weights: 2x4x4 conv on 2x2x2 folded clips.

    The port pads (1, 2, 2) and drops the first output in each axis, which is
    TF "SAME" padding, i.e. Keras' `"same"`.
    """
    if not temporal:
        raise ValueError(
            "The space-to-depth stem folds frame pairs into channels, so it cannot be 2D; "
            f"keep {inception.STEM!r} 3D in `surgery` or use space_to_depth=False."
        )
    x = SpaceToDepth3D(name=f"{name}_space_to_depth")(x)
    x = _st_unit_conv(filters, (2, 4, 4), f"{name}_conv1")(x)
    return _st_bn_relu(x, 1, name)


def _ceil_pool(x, kernel, strides, name):
    """MaxPool3dTFPadding: zeros `max(k - s, 0)` split front // 2, then ceil_mode.

    Padding `k - 1 - front` at the back gives the same ceil(n / s) windows at
    any size (all kernels here are >= their strides); the extra zeros never
    win a max because every pool input is post-ReLU (gating keeps it >= 0).
    """
    fronts = [max(k - s, 0) // 2 for k, s in zip(kernel, strides, strict=True)]
    padding = tuple((front, k - 1 - front) for front, k in zip(fronts, kernel, strict=True))
    x = keras.layers.ZeroPadding3D(padding, name=f"{name}_pad")(x)
    return keras.layers.MaxPooling3D(kernel, strides, name=name)(x)


def _gate(x, name):
    return SelfGating(name=name)(x)


def s3dg_dialect(space_to_depth):
    """The HowTo100M port's dialect, with its standard or space-to-depth stem."""
    names = {endpoint: endpoint.lower() for endpoint in inception.ENDPOINTS}
    names.update(
        {
            inception.STEM: "conv1",
            "MaxPool3d_2a_3x3": "maxpool_2a",
            "Conv3d_2b_1x1": "conv_2b",
            "Conv3d_2c_3x3": "conv_2c",
            "MaxPool3d_3a_3x3": "maxpool_3a",
            "MaxPool3d_4a_3x3": "maxpool_4a",
            "MaxPool3d_5a_2x2": "maxpool_5a",
        }
    )
    return inception.Dialect(
        names=names,
        branches=(
            "conv_b0",
            "conv_b1_a",
            "conv_b1_b",
            "conv_b2_a",
            "conv_b2_b",
            "maxpool_b3",
            "conv_b3_b",
        ),
        stem=_space_to_depth_stem if space_to_depth else _st_stem,
        conv=_st_conv,
        pool=_ceil_pool,
        gate=_gate,
        gate_names=("gating", "{block}_gating_b{branch}"),
    )


def S3D(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=400,
    classifier_activation="softmax",
    name="s3d",
    alpha=1.0,
    surgery=None,
):
    """Builds S3D; the full docstring is set below from `common.BASE_DOCSTRING`."""
    return inception.build_model("s3d", S3D_DIALECT, **locals())


def S3DG(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=400,
    classifier_activation="softmax",
    name="s3dg",
    alpha=1.0,
    surgery=None,
    space_to_depth=False,
):
    """Builds S3D-G; the full docstring is set below from `common.BASE_DOCSTRING`."""
    arguments = locals()
    dialect = s3dg_dialect(arguments.pop("space_to_depth"))
    return inception.build_model("s3dg", dialect, **arguments)


S3D.__doc__ = common.BASE_DOCSTRING.format(
    title="S3D (separable Inception-v1)",
    paper=PAPER,
    reference=S3D_REFERENCE,
    key="s3d",
    convention="pixels scaled to [0, 1], then normalised with torchvision's Kinetics mean/std; "
    "clips of at least 5x17x17 (the reference's classifier needs 13x209x209)",
    frames_note="",
    default_shape=(None, None, None, 3),
    extra_args=inception.EXTRA_ARGS_DOC,
)
S3DG.__doc__ = common.BASE_DOCSTRING.format(
    title="S3D-G (separable Inception-v1 with self-gating)",
    paper=PAPER,
    reference=S3DG_REFERENCE,
    key="s3dg",
    convention="pixels scaled to [0, 1]; any clip size works",
    frames_note=" (with space_to_depth=True, even sizes)",
    default_shape=(None, None, None, 3),
    extra_args=inception.EXTRA_ARGS_DOC
    + """
    space_to_depth: use the released HowTo100M weights' stem (2x2x2 folded
        into channels, then a 2x4x4 conv) instead of the 3x7x7 stride-2 conv.""",
)

register_model(
    ModelSpec(
        name="s3d",
        factory=S3D,
        preprocessing=TORCHVISION_S3D,
        reference=S3D_REFERENCE,
        test_kwargs={"alpha": 1 / 16},
        endpoints=inception.ENDPOINTS,
    )
)
register_model(
    ModelSpec(
        name="s3dg",
        factory=S3DG,
        preprocessing=HOWTO100M_S3DG,
        reference=S3DG_REFERENCE,
        test_kwargs={"alpha": 1 / 16},
        endpoints=inception.ENDPOINTS,
    )
)
