"""The installed distribution, not the checkout: console scripts, package data and version.

Every call runs outside the repository with no `PYTHONPATH`, so it imports the
kvid that `pip install` put in the environment.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import tensorflow as tf
import tomllib

from tests.processes import ROOT

PYPROJECT = tomllib.loads((Path(ROOT) / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
BIN = Path(sys.executable).parent


def installed_env():
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def run_installed(argv, cwd, timeout=240):
    return subprocess.run(
        argv, cwd=cwd, env=installed_env(), capture_output=True, text=True, timeout=timeout
    )


def test_every_console_script_is_installed_and_runs_its_app(tmp_path):
    for name, entry_point in SCRIPTS.items():
        module, function = entry_point.split(":")
        script = (BIN / name).read_text()  # what pip writes: an import of the entry point
        assert f"from {module} import {function}" in script, script
    done = run_installed([str(BIN / "kvid-predict"), "--help"], tmp_path)
    # absl's --help prints the usage line and exits with status 1.
    assert done.returncode == 1 and "USAGE: " in done.stdout and "kvid-predict" in done.stdout


INSTALLED = """
import json
from importlib import metadata

import kvid

direct_url = json.loads(metadata.distribution("kvid").read_text("direct_url.json") or "{}")
print(json.dumps({
    "file": kvid.__file__,
    "version": kvid.__version__,
    "distribution_version": metadata.version("kvid"),
    "editable": direct_url.get("dir_info", {}).get("editable", False),
    "labels": kvid.models.kinetics400_labels(),
}))
"""


def test_the_installed_kvid_has_the_projects_version_and_its_package_data(tmp_path):
    done = run_installed([sys.executable, "-c", INSTALLED], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    installed = json.loads(done.stdout.splitlines()[-1])
    version = PYPROJECT["project"]["version"]
    assert installed["version"] == installed["distribution_version"] == version
    labels = installed["labels"]
    assert len(labels) == 400 and labels[0] == "abseiling" and labels[-1] == "zumba"
    if not installed["editable"]:  # CI installs the wheel: its files, not the checkout's
        location = Path(installed["file"]).resolve()
        assert not location.is_relative_to(Path(ROOT).resolve()), location


def test_an_installed_console_script_exports_a_model(tmp_path):
    done = run_installed(
        [str(BIN / "kvid-export"), "--model=r3d_18", "--alpha=0.0625", "--classes=3"], tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Exported r3d_18 to saved_models/r3d_18/1" in done.stdout
    served = tf.saved_model.load(str(tmp_path / "saved_models" / "r3d_18" / "1"))
    frames = tf.zeros([1, 2, 20, 30, 3], tf.uint8)
    assert served.signatures["serving_default"](frames=frames)["probabilities"].shape == (1, 3)
