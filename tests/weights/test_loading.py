"""`weights=`: local files, and named sets downloaded from a mirror with their hash."""

import hashlib
import shutil

import numpy as np
import pytest

import kvid
from kvid.io import atomic
from kvid.weights import WeightFile, WeightSpec, register_weights, unregister_weights
from tests import processes
from tests.weights import mirror_path, serve
from tests.weights.test_torch_state_dict import tiny_model, torch_state_dict

CLIP = np.random.default_rng(1).uniform(-1, 1, (1, 8, 32, 32, 3)).astype("float32")
ORIGIN = "https://weights.example.org/kvid/r3d_tiny-0123.npz"


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def npz_weights(tmp_path):
    reference = tiny_model()
    path = tmp_path / "r3d_tiny.npz"
    np.savez(path, **torch_state_dict(reference, seed=3))
    kvid.weights.load_weights_file(reference, path)
    return path, reference


@pytest.fixture
def mirror(npz_weights, tmp_path, monkeypatch):
    """The tiny weights published at ORIGIN, served from a local mirror; KVID_HOME in tmp."""
    monkeypatch.setenv("KVID_HOME", str(tmp_path / "kvid_home"))
    path, reference = npz_weights
    shutil.copy(path, mirror_path(tmp_path / "mirror", ORIGIN))
    requests = []
    with serve(tmp_path / "mirror", requests) as url:
        monkeypatch.setenv(kvid.weights.MIRROR_ENV, url + "/")
        yield path.read_bytes(), reference, requests
    unregister_weights("r3d_18", "test_set")


def register(data, algorithm="sha256", digest=None):
    if digest is None:
        digest = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha256_prefix": hashlib.sha256(data).hexdigest()[:8],
            "git_blob_sha1": git_blob_sha1(data),
        }[algorithm]
    return register_weights(
        WeightSpec(
            "r3d_18",
            "test_set",
            (WeightFile(ORIGIN, digest, algorithm),),
            classes=5,
            model_kwargs={"alpha": 1 / 16},
        )
    )


def test_npz_file_path(npz_weights):
    path, reference = npz_weights
    model = tiny_model(weights=str(path))
    np.testing.assert_array_equal(
        model.predict(CLIP, verbose=0), reference.predict(CLIP, verbose=0)
    )


def test_keras_weights_file(npz_weights, tmp_path):
    _, reference = npz_weights
    reference.save_weights(tmp_path / "r3d.weights.h5")
    model = tiny_model(weights=tmp_path / "r3d.weights.h5")
    np.testing.assert_array_equal(
        model.predict(CLIP, verbose=0), reference.predict(CLIP, verbose=0)
    )


def test_headless_model_takes_weights_with_a_classifier(npz_weights):
    path, reference = npz_weights
    model = tiny_model(weights=str(path), include_top=False, pooling="avg")
    np.testing.assert_array_equal(
        model.get_layer("layer4_1_conv2_0").kernel.numpy(),
        reference.get_layer("layer4_1_conv2_0").kernel.numpy(),
    )


def test_unsupported_file_is_named(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not a safe format")
    with pytest.raises(ValueError, match="weights.pth"):
        tiny_model(weights=str(path))


@pytest.mark.parametrize("algorithm", ["sha256", "sha256_prefix", "git_blob_sha1"])
def test_named_weights_come_from_the_mirror_verified_and_converted_once(
    mirror, tmp_path, capsys, algorithm
):
    data, reference, requests = mirror
    spec = register(data, algorithm)
    model = tiny_model(weights="test_set")
    np.testing.assert_array_equal(
        model.predict(CLIP, verbose=0), reference.predict(CLIP, verbose=0)
    )
    assert requests == ["/weights.example.org/kvid/r3d_tiny-0123.npz"]
    assert "Downloading http://127.0.0.1" in capsys.readouterr().err  # with a progress bar
    folder = tmp_path / "kvid_home" / "weights" / "r3d_18_test_set"
    assert (folder / "r3d_tiny-0123.npz").read_bytes() == data
    assert (folder / "r3d_18_test_set.weights.h5").is_file()
    assert sorted(p.name for p in folder.iterdir()) == [
        "r3d_18_test_set.weights.h5",
        "r3d_tiny-0123.npz",
    ]  # no temporary file left behind
    # The second time, the converted file is used: no download, no conversion.
    (folder / "r3d_tiny-0123.npz").unlink()
    again = tiny_model(weights="test_set")
    np.testing.assert_array_equal(
        again.predict(CLIP, verbose=0), reference.predict(CLIP, verbose=0)
    )
    assert len(requests) == 1
    assert kvid.weights.list_weights("r3d_18") == ["kinetics400", "test_set"]
    assert "r3d_18/test_set" in kvid.weights.list_weights()
    assert spec is kvid.weights.get_weights_spec("r3d_18", "test_set")


def test_hash_mismatch_names_both_hashes_and_deletes_the_file(mirror, tmp_path):
    data, _, _ = mirror
    register(data, "sha256", "0" * 64)
    actual = hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError, match=f"Expected sha256 0{{64}}, got {actual}; the file was"):
        tiny_model(weights="test_set")
    folder = tmp_path / "kvid_home" / "weights" / "r3d_18_test_set"
    assert list(folder.iterdir()) == []


def test_a_corrupted_cached_download_is_fetched_again(mirror, tmp_path):
    data, reference, requests = mirror
    register(data)
    folder = tmp_path / "kvid_home" / "weights" / "r3d_18_test_set"
    folder.mkdir(parents=True)
    (folder / "r3d_tiny-0123.npz").write_bytes(data[:100])
    model = tiny_model(weights="test_set")
    np.testing.assert_array_equal(
        model.predict(CLIP, verbose=0), reference.predict(CLIP, verbose=0)
    )
    assert len(requests) == 1


def test_a_killed_download_or_conversion_is_redone_and_its_leftovers_removed(mirror, tmp_path):
    data, reference, requests = mirror
    register(data)
    folder = tmp_path / "kvid_home" / "weights" / "r3d_18_test_set"
    folder.mkdir(parents=True)
    # What a download and a conversion killed part-way leave (kvid.io.atomic's temporary names).
    prefix = f"{atomic.PARTIAL_PREFIX}{atomic._HOST}-{processes.unused_pid()}-000000-"
    (folder / f"{prefix}r3d_tiny-0123.npz.partial").write_bytes(data[:100])
    (folder / f"{prefix}r3d_18_test_set.weights.h5").write_bytes(b"\x89HDF")
    model = tiny_model(weights="test_set")
    np.testing.assert_array_equal(
        model.predict(CLIP, verbose=0), reference.predict(CLIP, verbose=0)
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "r3d_18_test_set.weights.h5",
        "r3d_tiny-0123.npz",
    ]


def test_an_unreachable_download_says_what_to_do(mirror, tmp_path, monkeypatch):
    data, _, _ = mirror
    register(data)
    (port,) = processes.free_ports(1)  # nothing listens there
    monkeypatch.setenv(kvid.weights.MIRROR_ENV, f"http://127.0.0.1:{port}/")
    folder = tmp_path / "kvid_home" / "weights" / "r3d_18_test_set"
    with pytest.raises(kvid.weights.DownloadError) as raised:
        tiny_model(weights="test_set")
    message = str(raised.value)
    for part in ("'test_set'", f"127.0.0.1:{port}", ORIGIN, str(folder), "KVID_WEIGHTS_MIRROR"):
        assert part in message, part
    assert list(folder.iterdir()) == []  # no partial file left behind


def test_named_weights_load_headless(mirror):
    data, reference, _ = mirror
    register(data)
    model = tiny_model(weights="test_set", include_top=False, pooling="avg")
    assert "fc" not in [layer.name for layer in model.layers]
    np.testing.assert_array_equal(
        model.get_layer("layer4_1_conv2_0").kernel.numpy(),
        reference.get_layer("layer4_1_conv2_0").kernel.numpy(),
    )


def test_named_weights_need_their_class_count(mirror):
    register(mirror[0])
    with pytest.raises(ValueError, match=r"have 5 classes.*Received: classes=7"):
        kvid.R3D18(alpha=1 / 16, classes=7, weights="test_set")


def test_named_weights_need_three_input_channels(mirror):
    register(mirror[0])
    with pytest.raises(ValueError, match="3 input channels"):
        tiny_model(weights="test_set", input_shape=(8, 32, 32, 1))


def test_unknown_name_lists_what_is_registered(mirror):
    register(mirror[0])
    with pytest.raises(ValueError, match=r"\(kinetics400, test_set\).*weights='imagenet'"):
        tiny_model(weights="imagenet")


def test_weight_files_check_their_hash_format():
    with pytest.raises(ValueError, match="64 hex digits"):
        WeightFile("https://x/y.pth", "abc")
    with pytest.raises(ValueError, match="algorithm"):
        WeightFile("https://x/y.pth", "0" * 64, "md5")
