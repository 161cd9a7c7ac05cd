"""Named weight sets: where to fetch them, their hash and what they expect."""

from __future__ import annotations

import dataclasses

KINETICS_400 = "kinetics400"


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """A named set of weights for one registered model.

    Attributes:
        model: the registry key of the model, e.g. `"r3d_18"`.
        name: the weights name passed as `weights=...`, e.g. `"kinetics400"`.
        url: where the file is fetched from.
        sha256: the file's SHA-256; a download that does not match is rejected.
        classes: the classifier width the weights were trained with.
        labels: the label set the classes are drawn from (for
            `decode_predictions`), or `None`.
        description: where the weights come from and what they score.
    """

    model: str
    name: str
    url: str
    sha256: str
    classes: int
    labels: str | None = KINETICS_400
    description: str = ""

    @property
    def file_name(self) -> str:
        """The cache file name: model, weights name and the URL's extension."""
        suffix = (
            ".weights.h5" if self.url.endswith(".weights.h5") else "." + self.url.rsplit(".", 1)[-1]
        )
        return f"{self.model}_{self.name}{suffix}"


_WEIGHTS: dict[tuple[str, str], WeightSpec] = {}


def register_weights(spec: WeightSpec) -> WeightSpec:
    """Makes `spec` available as `weights=spec.name` for `spec.model`."""
    if len(spec.sha256) != 64:
        raise ValueError(f"`sha256` must be 64 hex digits. Received: sha256={spec.sha256!r}")
    _WEIGHTS[(spec.model, spec.name)] = spec
    return spec


def unregister_weights(model: str, name: str) -> None:
    """Removes a registered weight set (no error if it is not there)."""
    _WEIGHTS.pop((model, name), None)


def list_weights(model: str) -> list[str]:
    """Names of the weight sets registered for the model `model`."""
    return sorted(name for m, name in _WEIGHTS if m == model)


def get_weights_spec(model: str, name: str) -> WeightSpec | None:
    """The `WeightSpec` registered for `(model, name)`, or `None`."""
    return _WEIGHTS.get((model, name))
