"""The installed distribution, not the checkout: console scripts, package data and version.

Every call runs outside the repository with no `PYTHONPATH`, so it imports the
kvid that `pip install` put in the environment (tests/apps/test_export.py
exports a model with the installed `kvid-export`).
"""

import json
import os
import re
import sys
from pathlib import Path

import tomllib

from tests.processes import ROOT, run_installed

PYPROJECT = tomllib.loads((Path(ROOT) / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]
BIN = Path(sys.executable).parent


def test_every_console_script_is_installed_and_runs_its_app(tmp_path):
    for name, entry_point in SCRIPTS.items():
        module, function = entry_point.split(":")
        script = (BIN / name).read_text()  # what pip writes: an import of the entry point
        assert f"from {module} import {function}" in script, script
    done = run_installed("kvid-predict", "--help", cwd=tmp_path)
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
    "labels": kvid.weights.kinetics400_categories(),
}))
"""


def test_the_installed_kvid_has_the_projects_version_and_its_package_data(tmp_path):
    done = run_installed(os.path.basename(sys.executable), "-c", INSTALLED, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    installed = json.loads(done.stdout.splitlines()[-1])
    # One version, kvid.__version__, which the build reads for the distribution's.
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    source = (Path(ROOT) / "kvid" / "__init__.py").read_text()
    (version,) = re.findall(r'^__version__ = "([^"]+)"$', source, flags=re.M)
    assert installed["version"] == installed["distribution_version"] == version
    labels = installed["labels"]
    assert len(labels) == 400 and labels[0] == "abseiling" and labels[-1] == "zumba"
    if not installed["editable"]:  # CI installs the wheel: its files, not the checkout's
        location = Path(installed["file"]).resolve()
        assert not location.is_relative_to((Path(ROOT) / "kvid").resolve()), location
