"""The distribution ships every package of kvid and one console script per app."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def test_every_kvid_package_is_listed():
    listed = set(re.findall(r'^\s+"(kvid[\w.]*)",$', PYPROJECT, flags=re.M))
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "kvid").rglob("__init__.py")
    }
    assert found | {"kvid_apps"} == listed


def test_every_app_has_a_console_script():
    apps = {path.stem for path in (ROOT / "apps").glob("*.py") if not path.stem.startswith("_")}
    scripts = dict(re.findall(r'^kvid-[\w-]+ = "kvid_apps\.(\w+):(\w+)"$', PYPROJECT, flags=re.M))
    assert set(scripts) == apps and set(scripts.values()) == {"run"}
