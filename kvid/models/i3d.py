"""I3D: Inception-v1 inflated to 3D (Carreira & Zisserman 2017).

Checked against InceptionI3d of piergiaj/pytorch-i3d, the widely used PyTorch
port of DeepMind's I3D. Layer names are its module paths with dots as
underscores (`Mixed_3b.b1b.conv3d` -> `Mixed_3b_b1b_conv3d`), so its state
dicts load with `kvid.weights.load_torch_state_dict`. It pads every conv and
pool TF-"SAME" (front = total // 2) at the actual input size, which is Keras'
`"same"`; its pools pad with zeros, which equals Keras' padding because every
pool input is post-ReLU.
"""

from __future__ import annotations

import keras

from kvid.conventions import DEEPMIND_I3D
from kvid.layers import Conv3D
from kvid.models import common, inception
from kvid.models.registry import ModelSpec, register_model

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99  # torch's momentum=0.01
REFERENCE = "InceptionI3d of piergiaj/pytorch-i3d (PyTorch port of DeepMind's I3D)"


def unit(x, filters, kernel, name, temporal, strides=1):
    """Unit3D: Conv3D (TF "SAME", no bias) -> BN -> ReLU, the ReLU named `name`."""
    kernel = (kernel if temporal else 1, kernel, kernel)
    x = Conv3D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv3d"
    )(x)
    x = common.batch_norm(x, f"{name}_bn", epsilon=BN_EPSILON, momentum=BN_MOMENTUM)
    return keras.layers.ReLU(name=name)(x)


def stem(x, filters, name, temporal):
    """Conv3d_1a_7x7: 7x7x7, stride 2 in time and space."""
    return unit(x, filters, 7, name, temporal, strides=2)


def pool(x, kernel, strides, name):
    """MaxPool3dSamePadding."""
    return keras.layers.MaxPooling3D(kernel, strides, padding="same", name=name)(x)


DIALECT = inception.Dialect(
    names={endpoint: endpoint for endpoint in inception.ENDPOINTS},
    branches=inception.BRANCHES,
    stem=stem,
    conv=unit,
    pool=pool,
    head=inception.WindowHead(
        dropout=0.5, names=("avg_pool", "dropout", "logits_conv3d", "logits")
    ),
)


def I3D(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=400,
    classifier_activation="softmax",
    name="i3d",
    alpha=1.0,
    surgery=None,
):
    """Builds I3D; the full docstring is set below from `common.BASE_DOCSTRING`."""
    return inception.build_model("i3d", DIALECT, **locals())


I3D.__doc__ = common.BASE_DOCSTRING.format(
    title="I3D (Inflated Inception-v1)",
    paper="Carreira & Zisserman, Quo Vadis, Action Recognition? A New Model and the Kinetics "
    "Dataset, CVPR 2017",
    reference=REFERENCE,
    key="i3d",
    convention="pixels scaled to [-1, 1]; any clip size works (the reference needs 9x193x193)",
    frames_note="",
    default_shape=(None, None, None, 3),
    extra_args=inception.EXTRA_ARGS_DOC,
)

register_model(
    ModelSpec(
        name="i3d",
        factory=I3D,
        preprocessing=DEEPMIND_I3D,
        reference=REFERENCE,
        test_kwargs={"alpha": 1 / 16},
        endpoints=inception.ENDPOINTS,
    )
)
