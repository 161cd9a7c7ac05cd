import platform
import re
import warnings

import pytest

from kvid import _onednn
from tests.processes import run_python

X86 = platform.machine().lower() in ("x86_64", "amd64")
ONEDNN_STATE = (
    "import os; from tensorflow.python.util import _pywrap_util_port as port; "
    "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), port.IsMklEnabled())"
)


@pytest.fixture(autouse=True)
def _fresh_warning_state(monkeypatch):
    monkeypatch.setattr(_onednn, "_warned", False)


def _configure(environ, modules=(), machine="x86_64", enabled=False):
    return _onednn.configure(environ, dict.fromkeys(modules), machine, lambda: enabled)


def test_sets_the_variable_before_tensorflow_is_imported():
    environ = {}
    assert _configure(environ) == "enabled"
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}


@pytest.mark.parametrize("value", ["0", "1", ""])
def test_keeps_the_users_choice(value):
    environ = {"TF_ENABLE_ONEDNN_OPTS": value}
    assert _configure(environ) == "user"
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": value}


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "ppc64le"])
def test_leaves_other_architectures_to_tensorflow(machine):
    environ = {}
    assert _configure(environ, machine=machine) == "not_x86"
    assert environ == {}


def test_warns_once_with_the_fix_when_tensorflow_came_first_with_onednn_off():
    with pytest.warns(RuntimeWarning, match="TF_ENABLE_ONEDNN_OPTS=1 in the environment"):
        assert _configure({}, modules=["tensorflow"]) == "too_late"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _configure({}, modules=["tensorflow"]) == "too_late"


def test_is_silent_when_tensorflow_came_first_with_onednn_on():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _configure({}, modules=["tensorflow"], enabled=True) == "already_on"
        assert _configure({}, modules=["tensorflow"], enabled=None) == "already_on"


@pytest.mark.skipif(not X86, reason="oneDNN is switched on only on x86")
@pytest.mark.parametrize("first", ["kvid", "apps.train"])
def test_kvid_and_the_apps_turn_onednn_on_before_tensorflow_loads(first, monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    done = run_python("-c", f"import {first}; {ONEDNN_STATE}")
    # On, and the environment left as it was: the variable was set for TensorFlow's import only.
    assert done.stdout.split()[-2:] == ["None", "True"]


def test_import_tensorflow_restores_the_environment():
    environ = {}
    assert _onednn.import_tensorflow(environ) in ("enabled", "already_on", "too_late", "not_x86")
    assert environ == {}
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert _onednn.import_tensorflow(environ) == ("user" if X86 else "not_x86")
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}


# The suite runs with oneDNN on (tests/conftest.py); the layers' and a model's parity must hold
# with Eigen's kernels too, which sum in another order.
PARITY_WITH_ONEDNN_OFF = [
    "tests/layers/test_convolution.py",
    "tests/layers/test_normalization.py",
    "tests/models/test_video_resnet_parity.py::"
    "test_logits_and_features_match_torchvision[r3d_18__public_nc10]",
]


@pytest.mark.skipif(not X86, reason="oneDNN is switched on only on x86")
def test_parity_holds_with_onednn_off():
    script = (
        "import sys, pytest; from tensorflow.python.util import _pywrap_util_port as port; "
        "assert not port.IsMklEnabled(), 'oneDNN is on'; "
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *{PARITY_WITH_ONEDNN_OFF}]))"
    )
    done = run_python("-c", script, env={"TF_ENABLE_ONEDNN_OPTS": "0"}, timeout=240)
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in \S+", summary), done.stdout[-2000:]
