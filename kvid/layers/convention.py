"""The layer that records a model's input convention in its graph."""

from __future__ import annotations

import keras

from kvid.preprocessing import Preprocessing


@keras.saving.register_keras_serializable(package="kvid")
class ClipConvention(keras.layers.Layer):
    """An identity layer that records the model's `Preprocessing` in its graph.

    Every kvid factory puts one right after its input, so the convention
    travels with the model: into a model built on a kvid backbone
    (`keras.Model(backbone.input, head(backbone.output))`), through `.keras`
    save and load (a registered class, so `safe_mode=True` loads it; no
    Lambda), and to export, evaluation and prediction, which find it with
    `model_preprocessing`. It computes nothing.

    Args:
        preprocessing: a `Preprocessing`, or its config dict.
    """

    def __init__(self, preprocessing, **kwargs):
        kwargs.setdefault("dtype", "float32")  # passes clips through uncast
        super().__init__(**kwargs)
        self.preprocessing = _as_preprocessing(preprocessing)
        self._convert_input_args = False

    def call(self, inputs):
        """Returns `inputs` unchanged."""
        return inputs

    def compute_output_spec(self, inputs):
        """A new symbolic tensor like `inputs`."""
        # A new tensor, so the layer is a node of the functional graph.
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

    def get_config(self):
        """The layer's config, with the `Preprocessing` as a dict."""
        return {**super().get_config(), "preprocessing": self.preprocessing.get_config()}


def _as_preprocessing(preprocessing) -> Preprocessing:
    if isinstance(preprocessing, dict):
        return Preprocessing.from_config(preprocessing)
    if not isinstance(preprocessing, Preprocessing):
        raise ValueError(
            "Expected a `kvid.Preprocessing` or its config dict. "
            f"Received: preprocessing={preprocessing!r}"
        )
    return preprocessing


def flat_layers(model) -> list[keras.layers.Layer]:
    """Every layer of `model` in order, the layers of nested models in their place."""
    found = []
    for layer in model.layers:
        found.extend(flat_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return found


def _convention_layers(model) -> list[ClipConvention]:
    """The `ClipConvention` layers of `model`, nested models included."""
    return [layer for layer in flat_layers(model) if isinstance(layer, ClipConvention)]


def model_preprocessing(model) -> Preprocessing | None:
    """The `Preprocessing` recorded in `model` by its `ClipConvention` layer, or `None`.

    Looks through nested models too. Several layers with different
    conventions (two backbones) give `None`: ask the caller for one.

    Example:
        >>> kvid.layers.model_preprocessing(kvid.R3D18(alpha=1 / 16)).crop_shape
        (112, 112)
    """
    found = {layer.preprocessing for layer in _convention_layers(model)}
    return found.pop() if len(found) == 1 else None


def set_model_preprocessing(model, preprocessing: Preprocessing) -> None:
    """Records `preprocessing` in every `ClipConvention` layer of `model`.

    For a model trained on clips of another size than its convention's (the
    convention is then saved with it and used by its export).

    Raises:
        ValueError: if `model` has no `ClipConvention` layer.
    """
    layers = _convention_layers(model)
    if not layers:
        raise ValueError(
            f"Model {model.name!r} has no `ClipConvention` layer to record its preprocessing in "
            "(kvid factories add one after their input)."
        )
    for layer in layers:
        layer.preprocessing = _as_preprocessing(preprocessing)
