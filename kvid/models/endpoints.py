"""Feature extraction from named intermediate layers."""

from __future__ import annotations

from collections.abc import Sequence

import keras


def feature_extractor(model: keras.Model, endpoints: Sequence[str]) -> keras.Model:
    """A model that returns the outputs of the named layers of `model` as a dict.

    Every kvid model names its stage outputs (see `ModelSpec.endpoints`, e.g.
    `"layer1"`..`"layer4"` for video ResNets, `"Mixed_4f"` for Inception).

    Args:
        model: a functional model (weights are shared, not copied).
        endpoints: names of layers of `model`.

    Returns:
        A `keras.Model` with the same input and a dict of outputs.

    Raises:
        ValueError: naming any endpoint that is not a layer of `model`.

    Example:
        >>> base = kvid.R2Plus1D18(include_top=False, alpha=1 / 16, input_shape=(8, 32, 32, 3))
        >>> features = kvid.models.feature_extractor(base, ["layer3", "layer4"])
        >>> outputs = features(np.zeros((1, 8, 32, 32, 3), np.float32))
        >>> outputs["layer3"].shape, outputs["layer4"].shape
        (TensorShape([1, 2, 4, 4, 16]), TensorShape([1, 1, 2, 2, 32]))
    """
    names = {layer.name for layer in model.layers}
    unknown = [name for name in endpoints if name not in names]
    if unknown or not endpoints:
        raise ValueError(
            f"Endpoints must be layer names of model {model.name!r}. Received: endpoints="
            f"{list(endpoints)}; unknown: {unknown}"
        )
    outputs = {name: model.get_layer(name).output for name in endpoints}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")
