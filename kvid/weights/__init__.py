"""Weights: named sets fetched with a hash, local files, reference state dicts."""

from kvid.weights.loading import fetch_weights, load_weights, load_weights_file
from kvid.weights.registry import (
    WeightSpec,
    get_weights_spec,
    list_weights,
    register_weights,
    unregister_weights,
)
from kvid.weights.torch_state_dict import load_torch_state_dict

__all__ = [
    "WeightSpec",
    "fetch_weights",
    "get_weights_spec",
    "list_weights",
    "load_torch_state_dict",
    "load_weights",
    "load_weights_file",
    "register_weights",
    "unregister_weights",
]
