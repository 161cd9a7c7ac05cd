"""`weights=`: local files and named sets downloaded from a server with their hash."""

import contextlib
import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

import kvid
from kvid.weights import WeightSpec, register_weights, unregister_weights
from tests.weights.test_torch_state_dict import tiny_model, torch_state_dict

CLIP = np.random.default_rng(1).uniform(-1, 1, (1, 8, 32, 32, 3)).astype("float32")


@pytest.fixture
def npz_weights(tmp_path):
    reference = tiny_model()
    path = tmp_path / "r3d_tiny.npz"
    np.savez(path, **torch_state_dict(reference, seed=3))
    kvid.weights.load_weights_file(reference, path)
    return path, reference


@contextlib.contextmanager
def serve(directory):
    """Serves `directory` over HTTP on 127.0.0.1 for the duration of the block."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def named_weights(npz_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("KVID_HOME", str(tmp_path / "kvid_home"))
    path, reference = npz_weights
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    with serve(path.parent) as url:
        spec = WeightSpec("r3d_18", "test_set", f"{url}/{path.name}", sha256, classes=5)
        register_weights(spec)
        yield spec, reference
        unregister_weights("r3d_18", "test_set")


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


def test_named_weights_are_downloaded_once_and_verified(named_weights, tmp_path):
    spec, reference = named_weights
    model = tiny_model(weights="test_set")
    np.testing.assert_array_equal(
        model.predict(CLIP, verbose=0), reference.predict(CLIP, verbose=0)
    )
    cached = tmp_path / "kvid_home" / "weights" / spec.file_name
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == spec.sha256
    assert "test_set" in kvid.weights.list_weights("r3d_18")


def test_hash_mismatch_is_rejected_and_the_file_deleted(named_weights, tmp_path):
    spec, _ = named_weights
    register_weights(WeightSpec("r3d_18", "test_set", spec.url, "0" * 64, classes=5))
    with pytest.raises(ValueError, match="do not match their SHA-256 0000"):
        tiny_model(weights="test_set")
    assert not (tmp_path / "kvid_home" / "weights" / spec.file_name).exists()


def test_named_weights_need_their_class_count(named_weights):
    with pytest.raises(ValueError, match="classes=7"):
        kvid.R3D18(alpha=1 / 16, classes=7, weights="test_set")


def test_unknown_name_lists_what_is_registered(named_weights):
    with pytest.raises(ValueError, match=r"\(test_set\).*weights='imagenet'"):
        tiny_model(weights="imagenet")
