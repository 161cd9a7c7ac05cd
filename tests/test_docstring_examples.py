"""Every docstring example in kvid runs, and shows what it prints: one doctest per docstring.

The examples are documentation first, so each is self-contained: it makes the tiny model,
video or file it needs (in a fresh folder, its working directory) and downloads nothing.
"""

import collections
import copy
import doctest
import importlib
import pathlib
import pkgutil
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid

PACKAGE = pathlib.Path(kvid.__file__).resolve().parent
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# A docstring's example section, as Google style heads it (what `grep "Example:"` finds,
# without the class names that end in "Example").
EXAMPLE_SECTION = re.compile(r"^\s*Examples?:\s*$", re.M)


def public_modules():
    """kvid and every module under it but the private ones (`_onednn`, ...)."""
    yield kvid
    for info in pkgutil.walk_packages(kvid.__path__, prefix="kvid."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def collect_examples():
    """The docstrings with `>>>` examples, one `doctest.DocTest` each, by qualified name."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = {}
    for module in public_modules():
        # An object is found in the module that defines it only, so re-exports are not repeated.
        for test in finder.find(module, globs={}):
            if test.examples:
                found.setdefault(test.name, test)
    return [found[name] for name in sorted(found)]


EXAMPLES = collect_examples()


def example_sections():
    """How many example sections each public module's source has, by file."""
    counts = collections.Counter()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if any(part.startswith("_") and part != "__init__.py" for part in parts):
            continue
        sections = len(EXAMPLE_SECTION.findall(path.read_text()))
        if sections:
            counts[str(path)] = sections
    return counts


def test_every_example_section_is_collected():
    sections = example_sections()
    assert sum(sections.values()) > 0, "no `Example:` section found: is PACKAGE right?"
    collected = collections.Counter(str(pathlib.Path(t.filename).resolve()) for t in EXAMPLES)
    # An example whose `>>>` went missing, or whose object doctest stopped finding, shows here.
    missed = {
        path: f"{collected[path]} of {n}" for path, n in sections.items() if collected[path] < n
    }
    assert not missed, f"Files with fewer collected doctests than `Example:` sections: {missed}"
    assert len(EXAMPLES) >= sum(sections.values())


@pytest.mark.parametrize("example", EXAMPLES, ids=[t.name for t in EXAMPLES])
def test_example_runs(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths an example writes land in its own folder
    example = copy.copy(example)
    example.globs = {"kvid": kvid, "np": np, "tf": tf, "keras": keras, "tmp_dir": tmp_path}
    report = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    result = runner.run(example, out=report.append)
    if result.failed:
        pytest.fail("".join(report), pytrace=False)
