"""The torch-free, code-free reader of `torch.save` files and numpy pickles."""

import os
import pathlib
import pickle

import numpy as np
import pytest

from kvid.weights import UnsafePickleError, read_numpy_pickle, read_torch_file

DATA = pathlib.Path(__file__).parent / "data"
MARKER = pathlib.Path("/tmp/kvid-malicious-pickle-ran")  # what the malicious files create


def expected_tiny():
    """`make_files.tiny_state_dict`, recomputed with numpy."""
    base = np.arange(24, dtype="float32") / 10
    return {
        "conv.weight": base[:6].reshape(2, 3, 1, 1, 1),
        "conv.bias": np.array([0.5, -0.5], "float32"),
        "fc.weight": base.reshape(4, 6).T,
        "fc.bias": base[20:23],
        "bn.num_batches_tracked": np.array(7, "int64"),
        "half": np.arange(4, dtype="float16") / 4,
        "flags": np.array([True, False]),
    }


@pytest.mark.parametrize("name", ["tiny_zip.pth", "tiny_legacy.pt"])
def test_both_torch_save_formats_are_read_exactly(name):
    state = read_torch_file(DATA / name)
    expected = expected_tiny()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].dtype == value.dtype, key
        np.testing.assert_array_equal(state[key], value, err_msg=key)


@pytest.mark.parametrize(
    ("name", "global_name"),
    [
        ("malicious_legacy.pth", "posix.system"),
        ("malicious_zip.pth", "posix.system"),
    ],
)
def test_a_pickle_calling_os_system_is_refused_and_nothing_runs(name, global_name):
    MARKER.unlink(missing_ok=True)
    with pytest.raises(UnsafePickleError) as error:
        read_torch_file(DATA / name)
    assert name in str(error.value)
    assert f"`{global_name}`" in str(error.value)
    assert not MARKER.exists()


def test_a_numpy_pickle_calling_eval_is_refused():
    MARKER.unlink(missing_ok=True)
    with pytest.raises(UnsafePickleError, match=r"malicious_numpy.ckpt.*`builtins.eval`"):
        read_numpy_pickle(DATA / "malicious_numpy.ckpt")
    assert not MARKER.exists()


def test_a_malicious_pth_is_refused_through_weights(tmp_path):
    import kvid

    MARKER.unlink(missing_ok=True)
    with pytest.raises(UnsafePickleError, match="posix.system"):
        kvid.R3D18(alpha=1 / 16, classes=5, weights=str(DATA / "malicious_legacy.pth"))
    assert not MARKER.exists()


def test_numpy_pickles_of_nested_dicts_are_read(tmp_path):
    arrays = {
        "params": {"Mixed_3b/Branch_0": {"kernel": np.arange(6.0).reshape(2, 3)}},
        "batch_stats": {"mean": np.ones((1, 1, 2), "float32")},
    }
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.ckpt"
        path.write_bytes(pickle.dumps(arrays, protocol=protocol))
        flat = read_numpy_pickle(path)
        assert sorted(flat) == ["batch_stats/mean", "params/Mixed_3b/Branch_0/kernel"]
        np.testing.assert_array_equal(
            flat["params/Mixed_3b/Branch_0/kernel"], np.arange(6.0).reshape(2, 3)
        )


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "objects.ckpt"
    path.write_bytes(pickle.dumps({"w": np.array([os.getcwd, 1], dtype=object)}))
    with pytest.raises(UnsafePickleError):
        read_numpy_pickle(path)


def test_a_truncated_legacy_file_is_an_error(tmp_path):
    path = tmp_path / "cut.pt"
    path.write_bytes((DATA / "tiny_legacy.pt").read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_torch_file(path)
