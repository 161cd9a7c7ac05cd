"""The README's quickstart runs as written: a video's top-5 labels with named weights.

The named set's download is served from 127.0.0.1 (no network here): the test stands a file of
torchvision's layout, with its hash, in for torchvision's `r3d_18` weights, and checks the
printed labels against the model's own top-5 on an independently preprocessed clip.
"""

import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import kvid
from kvid.weights import WeightFile, get_weights_spec, register_weights, unregister_weights
from tests.export.test_saved_model import reference_inputs
from tests.weights import mirror_path, serve
from tests.weights.test_torch_state_dict import torch_state_dict

ROOT = Path(__file__).parents[1]
VIDEO = ROOT / "tests" / "fixtures" / "cricket_10f.mp4"
STAND_IN = "https://download.pytorch.org/models/r3d_18-kvid-test.npz"


def quickstart():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


@pytest.fixture
def served_weights(tmp_path, monkeypatch):
    """`r3d_18`'s `kinetics400`, a stand-in file served from a local mirror."""
    published = get_weights_spec("r3d_18", "kinetics400")
    model = kvid.R3D18(weights=None)
    path = Path(mirror_path(tmp_path / "mirror", STAND_IN))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **torch_state_dict(model, initialized=True))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    unregister_weights("r3d_18", "kinetics400")
    register_weights(dataclasses.replace(published, files=(WeightFile(STAND_IN, digest),)))
    monkeypatch.setenv("KVID_HOME", str(tmp_path / "kvid_home"))
    try:
        with serve(tmp_path / "mirror") as url:
            monkeypatch.setenv(kvid.weights.MIRROR_ENV, url + "/")
            yield model
    finally:
        unregister_weights("r3d_18", "kinetics400")
        register_weights(published)


def test_the_quickstart_prints_the_models_top5_kinetics_labels(served_weights, capsys):
    code = quickstart().replace('"video.mp4"', repr(str(VIDEO)))
    exec(code, {})  # noqa: S102 (the README's own code)
    printed = capsys.readouterr().out.splitlines()

    frames = kvid.io.read_video(str(VIDEO), fps=15)[:16]
    convention = kvid.models.get_preprocessing("r3d_18")
    probabilities = served_weights.predict(reference_inputs(frames[None], convention), verbose=0)
    best = np.argsort(-probabilities[0])[:5]
    names = kvid.weights.kinetics400_categories()
    # Each line is the name (padded to 30, longer names in full), then the probability.
    assert [line.rsplit(maxsplit=1)[0] for line in printed] == [names[i] for i in best]
    scores = [float(line.split()[-1]) for line in printed]
    np.testing.assert_allclose(scores, probabilities[0][best], atol=1e-3)
