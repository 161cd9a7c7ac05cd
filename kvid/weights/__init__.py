"""Weights: published sets fetched with their hash, and checkpoints read without torch."""

from kvid.weights import published
from kvid.weights.conversion import read_reference_state_dict
from kvid.weights.loading import (
    MIRROR_ENV,
    DownloadError,
    cache_dir,
    convert_checkpoint,
    convert_named_weights,
    fetch_weights,
    load_weights,
    load_weights_file,
)
from kvid.weights.published import kinetics400_categories
from kvid.weights.registry import (
    Metric,
    WeightFile,
    WeightSpec,
    get_weights_spec,
    list_weights,
    register_weights,
    unregister_weights,
)
from kvid.weights.torch_state_dict import load_torch_state_dict
from kvid.weights.unpickle import UnsafePickleError, read_numpy_pickle, read_torch_file

__all__ = [
    "DownloadError",
    "MIRROR_ENV",
    "Metric",
    "UnsafePickleError",
    "WeightFile",
    "WeightSpec",
    "cache_dir",
    "convert_checkpoint",
    "convert_named_weights",
    "fetch_weights",
    "get_weights_spec",
    "kinetics400_categories",
    "list_weights",
    "load_torch_state_dict",
    "load_weights",
    "load_weights_file",
    "published",
    "read_numpy_pickle",
    "read_reference_state_dict",
    "read_torch_file",
    "register_weights",
    "unregister_weights",
]
