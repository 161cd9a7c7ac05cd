"""Named weight sets: their files and hashes, and what the weights expect and score.

A `WeightSpec` carries what torchvision's `Weights` carry: where the files
come from and how to verify them, the input convention, the categories, the
published metrics with the protocol they were measured under, the source and
the licence.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import urllib.parse
from typing import Any

from kvid.preprocessing import Preprocessing

KINETICS_400 = "kinetics400"
HASH_ALGORITHMS = ("sha256", "sha256_prefix", "git_blob_sha1")


@dataclasses.dataclass(frozen=True)
class WeightFile:
    r"""One published file and how to verify it.

    Attributes:
        url: where the file is published.
        hash: the expected hex digest (for `"sha256_prefix"`, its first digits).
        algorithm: `"sha256"`; `"sha256_prefix"` when only a prefix of the
            SHA-256 is published (torch.hub's `name-<prefix>.pth` convention);
            or `"git_blob_sha1"`, the SHA-1 of `b"blob <size>\0" + content`
            that GitHub shows for a file of a repository.
    """

    url: str
    hash: str
    algorithm: str = "sha256"

    def __post_init__(self):
        if self.algorithm not in HASH_ALGORITHMS:
            raise ValueError(
                f"`algorithm` must be one of {HASH_ALGORITHMS}. Received: algorithm="
                f"{self.algorithm!r}"
            )
        digits = {"sha256": 64, "git_blob_sha1": 40}.get(self.algorithm)
        valid = all(c in "0123456789abcdef" for c in self.hash.lower())
        if not valid or (digits and len(self.hash) != digits) or len(self.hash) < 8:
            raise ValueError(
                f"`hash` must be {digits or 'at least 8'} hex digits for {self.algorithm}. "
                f"Received: hash={self.hash!r}"
            )

    @property
    def file_name(self) -> str:
        """The published file name (the last part of the URL's path)."""
        return posixpath.basename(urllib.parse.urlparse(self.url).path)

    def hasher(self, size: int):
        """A hashlib object primed for a file of `size` bytes."""
        if self.algorithm == "git_blob_sha1":
            hasher = hashlib.sha1(usedforsecurity=False)
            hasher.update(b"blob %d\0" % size)
            return hasher
        return hashlib.sha256()

    def matches(self, digest: str) -> bool:
        """Whether the hex `digest` of a downloaded file is the published one."""
        if self.algorithm == "sha256_prefix":
            return digest.startswith(self.hash.lower())
        return digest == self.hash.lower()


@dataclasses.dataclass(frozen=True)
class Metric:
    """A published accuracy, with the protocol it was measured under.

    Attributes:
        dataset: e.g. `"Kinetics-400 validation"`.
        top1: top-1 accuracy in percent.
        top5: top-5 accuracy in percent.
        protocol: `"clip"` or `"video"`-level and the views, e.g. `"video-level:
            5 clips x 1 crop, 16 frames at 15 fps"`.
        source: where the figure is published.
    """

    dataset: str
    top1: float
    top5: float
    protocol: str
    source: str


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """A named set of weights for one registered model.

    Attributes:
        model: the registry key of the model, e.g. `"r3d_18"`.
        name: the weights name passed as `weights=...`, e.g. `"kinetics400"`.
        files: the published files; the first is the checkpoint to read (a
            TF checkpoint lists its `.index` first, its data shards after).
        classes: the classifier width the weights were trained with.
        categories: the class names in output order (for
            `decode_predictions`), or `None`.
        preprocessing: the input convention the weights were trained with.
        metrics: published accuracies.
        source: who published the weights and how they were trained.
        licence: the licence of the weights.
        model_kwargs: factory arguments the weights need besides the
            defaults (e.g. `{"space_to_depth": True}`).
    """

    model: str
    name: str
    files: tuple[WeightFile, ...]
    classes: int
    categories: tuple[str, ...] | None = None
    preprocessing: Preprocessing | None = None
    metrics: tuple[Metric, ...] = ()
    source: str = ""
    licence: str = ""
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.files or not all(isinstance(f, WeightFile) for f in self.files):
            raise ValueError(
                f"`files` must be a non-empty tuple of WeightFile. Received: files={self.files!r}"
            )
        if self.categories is not None and len(self.categories) != self.classes:
            raise ValueError(
                f"{len(self.categories)} categories for {self.classes} classes in weights "
                f"{self.name!r} of {self.model!r}."
            )

    @property
    def cache_name(self) -> str:
        """The folder under `$KVID_HOME/weights` that holds the files."""
        return f"{self.model}_{self.name}"


_WEIGHTS: dict[tuple[str, str], WeightSpec] = {}


def register_weights(spec: WeightSpec) -> WeightSpec:
    """Makes `spec` available as `weights=spec.name` for `spec.model`."""
    _WEIGHTS[(spec.model, spec.name)] = spec
    return spec


def unregister_weights(model: str, name: str) -> None:
    """Removes a registered weight set (no error if it is not there)."""
    _WEIGHTS.pop((model, name), None)


def list_weights(model: str | None = None) -> list[str]:
    """Names of the weight sets registered for `model`.

    Args:
        model: a registry key; `None` lists every set as `"model/name"`.

    Example:
        >>> kvid.weights.list_weights("r3d_18")
        ['kinetics400']
    """
    if model is None:
        return sorted(f"{m}/{name}" for m, name in _WEIGHTS)
    return sorted(name for m, name in _WEIGHTS if m == model)


def get_weights_spec(model: str, name: str) -> WeightSpec | None:
    """The `WeightSpec` registered for `(model, name)`, or `None`."""
    return _WEIGHTS.get((model, name))
