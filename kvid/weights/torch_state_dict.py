"""Load a reference implementation's PyTorch state dict into a kvid model.

A kvid layer is named after the reference module it ports, with dots as
underscores (`layer1.0.conv1.0` -> `layer1_0_conv1_0`), so weights are matched
by name. Only numpy is needed: torch tensors must be converted by the caller.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import keras
import numpy as np


def _conv_kernel(w):
    # torch (out, in, *kernel) -> Keras (*kernel, in, out)
    return np.transpose(w, (*range(2, w.ndim), 1, 0))


def _identity(w):
    return w


def torch_weight_map(layer) -> dict:
    """Maps a layer's torch parameter names to `(variable, convert)` pairs.

    Layers of other kinds may define a `torch_weight_map()` method of their own;
    its names may be dotted (`fc.weight`) for parameters of a torch submodule,
    which are then looked up under `<layer name>_<submodule>` (`gating_fc`).
    """
    if hasattr(layer, "torch_weight_map"):
        return layer.torch_weight_map()
    if isinstance(layer, keras.layers.BatchNormalization):
        pairs = {
            "weight": layer.gamma,
            "bias": layer.beta,
            "running_mean": layer.moving_mean,
            "running_var": layer.moving_variance,
        }
        return {k: (v, _identity) for k, v in pairs.items() if v is not None}
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        found = {"weight": (layer.kernel, _conv_kernel)}
    elif isinstance(layer, keras.layers.Dense):
        found = {"weight": (layer.kernel, np.transpose)}
    else:
        raise TypeError(
            f"Layer {layer.name!r} of type {type(layer).__name__} has no torch mapping."
        )
    if layer.bias is not None:
        found["bias"] = (layer.bias, _identity)
    return found


def weighted_layers(model):
    """Layers that own weights, including those nested in sub-models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from weighted_layers(layer)
        elif layer.weights:
            yield layer


def load_torch_state_dict(
    model: keras.Model,
    state_dict: Mapping[str, np.ndarray],
    *,
    ignore: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """Fills every weight of `model` from a reference state dict.

    Args:
        model: a kvid model whose layer names follow the reference's modules.
        state_dict: reference parameter names -> numpy arrays in torch layout.
            `*num_batches_tracked` entries are optional and ignored.
        ignore: module names (reference spelling, e.g. `"fc"`) whose entries,
            and those of their submodules (`"text_module"` drops
            `text_module.fc1.weight`), are dropped, e.g. the classifier when
            loading into a headless model.

    Returns:
        `(state dict key, model variable path)` for every assigned entry.

    Raises:
        ValueError: listing every missing, unexpected and mis-shaped entry at once;
            nothing is assigned unless everything matches.
    """
    ignore = tuple(ignore)
    ignored_layers = {name.replace(".", "_") for name in ignore}
    by_module = defaultdict(dict)
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):
            continue
        module, _, param = key.rpartition(".")
        layer_name = module.replace(".", "_")
        dropped = layer_name in ignored_layers or any(
            module.startswith(name + ".") for name in ignore
        )
        if not dropped:
            by_module[layer_name][param] = (key, np.asarray(value))

    missing, mismatched, assignments = [], [], []
    for layer in weighted_layers(model):
        for param, (variable, convert) in torch_weight_map(layer).items():
            # A custom layer may hold a submodule's parameters (`fc.weight`).
            submodule, _, leaf = param.rpartition(".")
            module = f"{layer.name}_{submodule.replace('.', '_')}" if submodule else layer.name
            params = by_module.get(module, {})
            if leaf not in params:
                missing.append(f"{layer.name}.{param}")
                continue
            key, value = params.pop(leaf)
            value = convert(value)
            if tuple(value.shape) != tuple(variable.shape):
                got, wanted = tuple(value.shape), tuple(variable.shape)
                mismatched.append(f"{key}: got {got} (converted), model has {wanted}")
            else:
                assignments.append((key, variable, value))
    # Whatever was not popped is unexpected.
    unexpected = sorted(key for params in by_module.values() for key, _ in params.values())

    if missing or unexpected or mismatched:
        problems = []
        for title, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("mis-shaped", mismatched),
        ):
            if items:
                problems.append(f"{len(items)} {title}: " + ", ".join(items))
        raise ValueError(
            f"The state dict does not match model {model.name!r}. " + "; ".join(problems)
        )
    for _, variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return [(key, variable.path) for key, variable, _ in assignments]
