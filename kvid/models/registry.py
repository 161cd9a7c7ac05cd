"""Model registry: names, factories and the preprocessing each model expects.

Every model is registered once with a `ModelSpec`, which names its default input
convention (one of `kvid.conventions`); `kvid.models.model_convention` decides
which convention a built model's clips use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras

from kvid.preprocessing import Preprocessing


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
        name: registry key, snake_case.
        factory: the public CamelCase factory.
        preprocessing: the input convention of the model (and of its weights).
        reference: the implementation the port is checked against, or the paper
            that describes it when no public implementation exists.
        test_kwargs: arguments that make a tiny version of the model for fast
            registry-wide tests (narrow widths).
        endpoints: names of the layers whose outputs are the model's named
            feature endpoints, in depth order.
    """

    name: str
    factory: Callable[..., keras.Model]
    preprocessing: Preprocessing
    reference: str
    test_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    endpoints: tuple[str, ...] = ()

    def build(self, **kwargs) -> keras.Model:
        """Builds the model: `factory(**kwargs)`."""
        return self.factory(**kwargs)


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


def get_preprocessing(model) -> Preprocessing:
    """The `Preprocessing` of a registry key or a `ModelSpec`; a `Preprocessing` passes through.

    Raises:
        ValueError: for an unknown key or anything else.

    Example:
        >>> kvid.models.get_preprocessing("r3d_18").crop_shape
        (112, 112)
    """
    if isinstance(model, Preprocessing):
        return model
    if isinstance(model, ModelSpec):
        return model.preprocessing
    if isinstance(model, str):
        return get_spec(model).preprocessing
    raise ValueError(
        "Expected a registry key, a `ModelSpec` or a `Preprocessing`. "
        f"Received: {type(model).__name__} {model!r}"
    )


def get_model(name: str, **kwargs) -> keras.Model:
    """Builds the model registered as `name`.

    Args:
        name: a key of `list_models()`, e.g. `"r2plus1d_18"`.
        **kwargs: arguments of the factory (`include_top`, `weights`, `classes`, ...).

    Returns:
        A functional `keras.Model`.

    Example:
        >>> model = kvid.models.get_model("r3d_18", classes=10, alpha=1 / 16)
        >>> model.output_shape
        (None, 10)
    """
    return get_spec(name).build(**kwargs)


__all__ = [
    "ModelSpec",
    "Preprocessing",
    "get_model",
    "get_preprocessing",
    "get_spec",
    "list_models",
    "register_model",
]
