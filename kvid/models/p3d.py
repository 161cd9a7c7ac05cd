"""P3D ResNet-50 and DG-P3D (Qiu et al. 2017; Qiu et al. 2021, section 4).

No public implementation of DG-P3D exists, and "Optimization Planning for 3D
ConvNets" describes it in one paragraph per design (its figure 3 is not in the
text), so every choice the papers leave open is made here, once, and named in
this docstring and in the README:

- **Backbone.** ResNet-50 (bottleneck widths 64/128/256/512, x4 expansion,
  blocks 3/4/6/3). Stem: 1x7x7 conv stride (1, 2, 2), BN, ReLU, then a 1x3x3
  max-pool stride (1, 2, 2) with torch's symmetric padding: the ImageNet
  ResNet-50 stem inflated to one frame, so clips keep their length.
- **Pseudo-3D blocks** (Qiu et al. 2017, figure 2): the bottleneck's 3x3 conv
  becomes a spatial 1x3x3 conv S and a temporal 3x1x1 conv T, each followed by
  BN and ReLU, in one of three arrangements:
  P3D-A `T(S(x))`, P3D-B `S(x) + T(x)`, P3D-C `S(x) + T(S(x))`. "Mixed" P3D
  (the variant that paper chooses) interleaves them **A, B, C, A, B, C, ...** by
  the block's index over the whole network (layer1: A B C; layer2: A B C A;
  layer3: B C A B C A; layer4: B C A), as the P3D paper chains them. Both
  heads of DG-P3D continue the count from the trunk (B C A).
- **Strides** are on the first 1x1x1 conv of a block and on its projection
  shortcut, as in the Caffe ResNet the P3D reference builds on, so S and T
  never stride and the three arrangements stay shape-compatible. Time is not
  strided in the trunk: layer2 and layer3 stride (1, 2, 2).
- **Global context** (G-P3D; the paper cites GCNet, Cao et al. 2019): in every
  block of layer2 to layer4 (GCNet's c3-c5), after the last BN and before the
  residual addition, `y + W2 ReLU(LN(W1 mean_{t,h,w}(y)))` with a reduction
  of 16 and `W2` initialised to zero (GCNet's transform on that paper's
  "global-pooled representation", so each block starts as the P3D block).
- **Dual head** (DG-P3D): layer4 is built twice on layer3's output. The
  *temporal head* strides (1, 2, 2): all frames at low resolution (16x7x7 for a
  16x224x224 clip). The *spatial head* strides (4, 1, 1): a quarter of the
  frames at layer3's resolution (4x14x14). The two cost the same. Each head
  pools globally and has its own dropout (0.5, the paper's Kinetics setting)
  and fully connected layer; the predictions are fused linearly **before**
  the classifier activation, `w_t * logits_t + w_s * logits_s`, by a bias-free
  `Dense(1)` layer named `fusion` whose two weights are **learnable**,
  initialised to 0.5 each. Both heads are trained through the fused output.

With `include_top=False`, the fused features are the two heads' pooled
features concatenated (`(batch, 2 * 2048)`): a linear classifier on them is
exactly a pair of linear heads with linearly fused predictions. With
`pooling=None` the two feature maps are averaged onto their common grid
(temporal head's map over windows of 4 frames, spatial head's over 2x2
positions, Keras `"same"` padding) and concatenated: `(batch, T/4, H/32,
W/32, 4096)`. `P3D` (registry `p3d_50`) is the same network without global
context and with one head (the temporal head's layer4).
"""

from __future__ import annotations

import keras

from kvid.conventions import IMAGENET_P3D
from kvid.models import common
from kvid.models.registry import ModelSpec, register_model
from kvid.models.video_resnet import (
    CONV_2D,
    batch_norm,
    conv3d,
    projection_shortcut,
    stem,
)

PAPER = (
    "Qiu et al., Optimization Planning for 3D ConvNets, ICML 2021 (section 4); Qiu et al., "
    "Learning Spatio-Temporal Representation with Pseudo-3D Residual Networks, ICCV 2017"
)
REFERENCE = (
    "no public implementation: the papers' descriptions (Optimization Planning section 4, "
    "P3D blocks), choices documented in kvid/models/p3d.py"
)

STAGE_PLANES = (64, 128, 256, 512)
BLOCKS_PER_STAGE = (3, 4, 6, 3)
EXPANSION = 4
BLOCK_KINDS = ("A", "B", "C")  # interleaved in this order by global block index
GLOBAL_CONTEXT_STAGES = (False, True, True, True)  # layer1..layer4 (GCNet's c3-c5)
GLOBAL_CONTEXT_REDUCTION = 16
SPATIAL_HEAD_FRAME_STRIDE = 4
DROPOUT = 0.5
HEADS = ("temporal", "spatial")


def _spatial(x, planes, name):
    """S: 1x3x3 conv, BN, ReLU (`conv2`, `bn2` as in the P3D reference)."""
    x = conv3d(x, planes, (1, 3, 3), (1, 1, 1), (0, 1, 1), f"{name}_conv2")
    x = batch_norm(x, f"{name}_bn2")
    return keras.layers.ReLU(name=f"{name}_relu2")(x)


def _temporal(x, planes, name):
    """T: 3x1x1 conv, BN, ReLU (`conv3`, `bn3`)."""
    x = conv3d(x, planes, (3, 1, 1), (1, 1, 1), (1, 0, 0), f"{name}_conv3")
    x = batch_norm(x, f"{name}_bn3")
    return keras.layers.ReLU(name=f"{name}_relu3")(x)


def p3d_a(x, planes, name):
    """P3D-A: the temporal conv follows the spatial one, `T(S(x))`."""
    return _temporal(_spatial(x, planes, name), planes, name)


def p3d_b(x, planes, name):
    """P3D-B: spatial and temporal convs in parallel, `S(x) + T(x)`."""
    return keras.layers.Add(name=f"{name}_st_add")(
        [_spatial(x, planes, name), _temporal(x, planes, name)]
    )


def p3d_c(x, planes, name):
    """P3D-C: the temporal conv follows the spatial one, with a skip, `S(x) + T(S(x))`."""
    s = _spatial(x, planes, name)
    return keras.layers.Add(name=f"{name}_st_add")([s, _temporal(s, planes, name)])


P3D_UNITS = {"A": p3d_a, "B": p3d_b, "C": p3d_c}


def block_kind(index):
    """The P3D kind of the block with global index `index` (A, B, C, A, ...)."""
    return BLOCK_KINDS[index % len(BLOCK_KINDS)]


def global_context(x, name, reduction=GLOBAL_CONTEXT_REDUCTION):
    """Adds a transform of the globally pooled features to every position.

    `y = x + W2 ReLU(LayerNorm(W1 mean_{t,h,w}(x)))`, GCNet's transform with
    `W2` initialised to zero so the block starts as an identity.
    """
    channels = x.shape[-1]
    g = keras.layers.GlobalAveragePooling3D(keepdims=True, name=f"{name}_pool")(x)
    g = keras.layers.Dense(max(1, channels // reduction), name=f"{name}_fc1")(g)
    g = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_norm")(g)
    g = keras.layers.ReLU(name=f"{name}_relu")(g)
    g = keras.layers.Dense(channels, kernel_initializer="zeros", name=f"{name}_fc2")(g)
    return keras.layers.Add(name=f"{name}_add")([x, g])  # broadcast over (t, h, w)


def bottleneck(x, kind, planes, stride, name, with_global_context=False):
    """A P3D bottleneck: 1x1x1 (strided), the `kind` unit, 1x1x1 x4, shortcut, ReLU."""
    filters = planes * EXPANSION
    shortcut = x
    if stride != (1, 1, 1) or x.shape[-1] != filters:
        shortcut = projection_shortcut(x, filters, stride, f"{name}_downsample")
    y = conv3d(x, planes, (1, 1, 1), stride, (0, 0, 0), f"{name}_conv1")
    y = batch_norm(y, f"{name}_bn1")
    y = keras.layers.ReLU(name=f"{name}_relu1")(y)
    y = P3D_UNITS[kind](y, planes, name)
    y = conv3d(y, filters, (1, 1, 1), (1, 1, 1), (0, 0, 0), f"{name}_conv4")
    y = batch_norm(y, f"{name}_bn4")
    if with_global_context:
        y = global_context(y, f"{name}_gc")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_relu")(y)


def stage(x, kinds, planes, stride, name, with_global_context):
    """One bottleneck per entry of `kinds`; the first takes `stride`."""
    for block, kind in enumerate(kinds):
        first_stride = stride if block == 0 else (1, 1, 1)
        x = bottleneck(x, kind, planes, first_stride, f"{name}_{block}", with_global_context)
    return keras.layers.Identity(name=name)(x)


def stage_kinds(blocks_per_stage):
    """The P3D kind of every block, per stage, interleaved over the whole network."""
    starts = [sum(blocks_per_stage[:index]) for index in range(len(blocks_per_stage))]
    return [
        [block_kind(start + block) for block in range(blocks)]
        for start, blocks in zip(starts, blocks_per_stage, strict=True)
    ]


def _head_logits(x, head, classes):
    x = keras.layers.GlobalAveragePooling3D(name=f"{head}_avgpool")(x)
    x = keras.layers.Dropout(DROPOUT, name=f"{head}_dropout")(x)
    return keras.layers.Dense(classes, name=f"{head}_fc")(x)


def _fuse_logits(logits, classes, classifier_activation):
    """`w_t * logits_t + w_s * logits_s` with learnable weights, then the activation."""
    columns = [
        keras.layers.Reshape((classes, 1), name=f"{head}_logits")(x)
        for head, x in zip(HEADS, logits, strict=True)
    ]
    x = keras.layers.Concatenate(name="fusion_inputs")(columns)  # (batch, classes, 2)
    x = keras.layers.Dense(
        1, use_bias=False, kernel_initializer=keras.initializers.Constant(0.5), name="fusion"
    )(x)
    x = keras.layers.Reshape((classes,), name="fused_logits")(x)
    return keras.layers.Activation(classifier_activation, name="predictions")(x)


def _fuse_features(maps, pooling):
    """The headless output: both heads' features, pooled or on a common grid, concatenated."""
    temporal, spatial = maps
    if pooling is None:
        temporal = keras.layers.AveragePooling3D(
            (SPATIAL_HEAD_FRAME_STRIDE, 1, 1), padding="same", name="temporal_grid"
        )(temporal)
        spatial = keras.layers.AveragePooling3D((1, 2, 2), padding="same", name="spatial_grid")(
            spatial
        )
    else:
        pool = {"avg": keras.layers.GlobalAveragePooling3D, "max": keras.layers.GlobalMaxPooling3D}
        temporal, spatial = (
            pool[pooling](name=f"{head}_{pooling}pool")(x)
            for head, x in zip(HEADS, maps, strict=True)
        )
    return keras.layers.Concatenate(name="fused_features")([temporal, spatial])


def P3DResNet(
    *,
    dual_head,
    global_context_stages,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=400,
    classifier_activation="softmax",
    alpha=1.0,
    blocks_per_stage=BLOCKS_PER_STAGE,
    name="p3d_resnet",
    key=None,
):
    """Builds a mixed P3D ResNet-50, optionally with global context and the dual head.

    Args:
        dual_head: DG-P3D's temporal and spatial heads instead of one layer4.
        global_context_stages: four booleans, whether the blocks of layer1 ..
            layer4 add global context.
        include_top: whether to include the classifier(s).
        weights: `None`, a weights file, or a weights name registered for `key`.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional `(frames, height, width, channels)`.
        pooling: `None`, `"avg"` or `"max"`, with `include_top=False`.
        classes: number of classes, with `include_top=True`.
        classifier_activation: activation of the (fused) classifier, `None` for logits.
        alpha: width multiplier of every layer (1.0 is the paper's network).
        blocks_per_stage: bottlenecks in layer1..layer4 (and each head's layer4);
            `(3, 4, 6, 3)` is ResNet-50, `(3, 4, 23, 3)` ResNet-101.
        name: the model's name.
        key: the registry key, used to look up named weights.

    Returns:
        A functional `keras.Model`.
    """
    global_context_stages = tuple(global_context_stages)
    if len(global_context_stages) != 4 or not all(
        isinstance(g, bool) for g in global_context_stages
    ):
        raise ValueError(
            "`global_context_stages` must be four booleans (layer1..layer4). "
            f"Received: global_context_stages={global_context_stages}"
        )
    blocks_per_stage = tuple(blocks_per_stage)
    if len(blocks_per_stage) != 4 or not all(
        isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in blocks_per_stage
    ):
        raise ValueError(
            "`blocks_per_stage` must be four positive integers. "
            f"Received: blocks_per_stage={blocks_per_stage}"
        )
    input_shape = common.check_arguments(
        include_top=include_top,
        weights=weights,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        alpha=alpha,
        default_shape=(None, None, None, 3),
    )
    clips = common.clip_input(input_shape, input_tensor)
    planes = [common.scaled(p, alpha) for p in STAGE_PLANES]
    x = stem(common.record_convention(clips, key, weights), CONV_2D, planes[0], alpha)
    # torch pads its max-pool with -inf; zeros are the same after the ReLU.
    x = keras.layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name="stem_pool_pad")(x)
    x = keras.layers.MaxPooling3D((1, 3, 3), (1, 2, 2), name="stem_pool")(x)
    x = keras.layers.Identity(name="stem")(x)
    kinds = stage_kinds(blocks_per_stage)
    for index, with_gc in enumerate(global_context_stages[:3]):
        stride = (1, 1, 1) if index == 0 else (1, 2, 2)
        x = stage(x, kinds[index], planes[index], stride, f"layer{index + 1}", with_gc)
    with_gc = global_context_stages[3]
    if not dual_head:
        x = stage(x, kinds[3], planes[3], (1, 2, 2), "layer4", with_gc)
        outputs = common.classification_head(
            x,
            include_top=include_top,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            dropout=DROPOUT,
        )
        head_layers = ("fc",)
    else:
        # Both heads continue the trunk's A, B, C count with the same kinds.
        strides = {"temporal": (1, 2, 2), "spatial": (SPATIAL_HEAD_FRAME_STRIDE, 1, 1)}
        maps = [
            stage(x, kinds[3], planes[3], strides[head], f"{head}_layer4", with_gc)
            for head in HEADS
        ]
        if include_top:
            logits = [_head_logits(m, head, classes) for head, m in zip(HEADS, maps, strict=True)]
            outputs = _fuse_logits(logits, classes, classifier_activation)
        else:
            outputs = _fuse_features(maps, pooling)
        head_layers = ("temporal_fc", "spatial_fc", "fusion")
    model = keras.Model(common.model_inputs(clips, input_tensor), outputs, name=name)
    return common.finish_model(
        model,
        key=key,
        weights=weights,
        include_top=include_top,
        classes=classes,
        head_layers=head_layers,
    )


def P3D(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=400,
    classifier_activation="softmax",
    name="p3d_50",
    alpha=1.0,
    blocks_per_stage=BLOCKS_PER_STAGE,
):
    """Builds P3D ResNet-50; the full docstring is set below from `common.BASE_DOCSTRING`."""
    return P3DResNet(dual_head=False, global_context_stages=(False,) * 4, key="p3d_50", **locals())


def DGP3D(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=400,
    classifier_activation="softmax",
    name="dg_p3d_50",
    alpha=1.0,
    blocks_per_stage=BLOCKS_PER_STAGE,
):
    """Builds DG-P3D ResNet-50; the full docstring is set below from `common.BASE_DOCSTRING`."""
    return P3DResNet(
        dual_head=True, global_context_stages=GLOBAL_CONTEXT_STAGES, key="dg_p3d_50", **locals()
    )


_CONVENTION = "pixels scaled to [0, 1], then normalised with ImageNet's mean/std; any clip size"
_ALPHA_DOC = """
    alpha: width multiplier (1.0 is the paper's network).
    blocks_per_stage: bottlenecks per stage, `(3, 4, 6, 3)` (ResNet-50) by
        default; smaller for fast tests, `(3, 4, 23, 3)` for ResNet-101."""
P3D.__doc__ = common.BASE_DOCSTRING.format(
    title="mixed P3D ResNet-50 (P3D-A/B/C blocks interleaved)",
    paper=PAPER,
    reference=REFERENCE,
    key="p3d_50",
    convention=_CONVENTION,
    frames_note="",
    default_shape=(None, None, None, 3),
    extra_args=_ALPHA_DOC,
)
_POOLING_DOC = """    pooling: with `include_top=False`, `None` returns the 5D output of the last
        block, `"avg"` or `"max"` pools it globally to `(batch, channels)`."""
_DG_POOLING_DOC = """    pooling: with `include_top=False`, the fused features: `"avg"` or `"max"`
        pools each head's map globally and concatenates them to
        `(batch, 2 * channels)`; `None` averages both maps onto their common
        grid (4 frames / 2x2 positions) and concatenates them, 5D."""
DGP3D.__doc__ = common.BASE_DOCSTRING.format(
    title="DG-P3D ResNet-50 (dual-head global-contextual pseudo-3D; the heads' predictions "
    "are fused linearly, with learnable weights, before `classifier_activation`)",
    paper=PAPER,
    reference=REFERENCE,
    key="dg_p3d_50",
    convention=_CONVENTION,
    frames_note="",
    default_shape=(None, None, None, 3),
    extra_args=_ALPHA_DOC,
).replace(_POOLING_DOC, _DG_POOLING_DOC)
assert _DG_POOLING_DOC in DGP3D.__doc__

ENDPOINTS = ("stem", "layer1", "layer2", "layer3")
for _key, _factory, _endpoints in [
    ("p3d_50", P3D, (*ENDPOINTS, "layer4")),
    ("dg_p3d_50", DGP3D, (*ENDPOINTS, "temporal_layer4", "spatial_layer4")),
]:
    register_model(
        ModelSpec(
            name=_key,
            factory=_factory,
            preprocessing=IMAGENET_P3D,
            reference=REFERENCE,
            # One block per stage still uses all three kinds (A, B, C, then A in layer4).
            test_kwargs={"alpha": 1 / 16, "blocks_per_stage": (1, 1, 1, 1)},
            endpoints=_endpoints,
        )
    )
