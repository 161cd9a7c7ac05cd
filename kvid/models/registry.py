"""Model registry: names, factories and the preprocessing each model expects.

Every model is registered once with a `ModelSpec`. The data pipeline, the exporter
and the weight specs read a model's input conventions from here, so each family
keeps its reference convention in exactly one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

TORCHVISION_MEAN = (0.43216, 0.394666, 0.37645)
TORCHVISION_STD = (0.22803, 0.22145, 0.216989)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a model expects its clips.

    Pixels are first scaled from `[0, 255]` to `pixel_range`, then normalised
    with `(x - mean) / std`.

    Attributes:
        num_frames: default clip length.
        crop_size: side of the square crop the model is trained on.
        resize: frames are resized to this before cropping: an int is the short
            side, a pair is `(height, width)`.
        pixel_range: the range `[0, 255]` is mapped to.
        mean: per-channel mean subtracted after scaling.
        std: per-channel standard deviation divided by after scaling.
        fps: frame rate clips are sampled at, if the reference fixes one.
    """

    num_frames: int
    crop_size: int
    resize: int | tuple[int, int]
    pixel_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    fps: float | None = None


TORCHVISION_VIDEO = Preprocessing(
    num_frames=16,
    crop_size=112,
    resize=(128, 171),
    mean=TORCHVISION_MEAN,
    std=TORCHVISION_STD,
    fps=15.0,
)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        name: registry key, snake_case.
        factory: the public CamelCase factory.
        preprocessing: the input convention of the model (and of its weights).
        reference: the implementation the port is checked against, or the paper
            that describes it when no public implementation exists.
        kwargs: arguments bound to `factory` for this key.
        test_kwargs: arguments that make a tiny version of the model for fast
            registry-wide tests (narrow widths), merged over `kwargs`.
        endpoints: names of the layers whose outputs are the model's named
            feature endpoints, in depth order.
    """

    name: str
    factory: Callable[..., keras.Model]
    preprocessing: Preprocessing
    reference: str
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    test_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    endpoints: tuple[str, ...] = ()

    def build(self, **kwargs) -> keras.Model:
        """Builds the model with this entry's arguments, overridden by `kwargs`."""
        return self.factory(**{**self.kwargs, **kwargs})


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Adds `spec` to the registry; a name can be registered only once."""
    if spec.name in _REGISTRY:
        raise ValueError(f"A model named {spec.name!r} is already registered.")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Returns the registry keys, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """Returns the `ModelSpec` registered as `name`.

    Raises:
        ValueError: if no model is registered under `name`.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"Unknown model name. Received: name={name!r}. Available: {', '.join(list_models())}"
        ) from None


def get_model(name: str, **kwargs) -> keras.Model:
    """Builds the model registered as `name`.

    Args:
        name: a key of `list_models()`, e.g. `"r2plus1d_18"`.
        **kwargs: arguments of the factory (`include_top`, `weights`, `classes`, ...).

    Returns:
        A functional `keras.Model`.

    Example:
        >>> model = kvid.models.get_model("r3d_18", classes=10)
    """
    return get_spec(name).build(**kwargs)


def get_preprocessing(model: str | ModelSpec | Preprocessing) -> Preprocessing:
    """Returns the `Preprocessing` of a registry key, a spec, or passes one through."""
    if isinstance(model, Preprocessing):
        return model
    if isinstance(model, ModelSpec):
        return model.preprocessing
    return get_spec(model).preprocessing
