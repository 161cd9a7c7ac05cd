"""The TF Serving examples of the README and docs/serving.md run against a real export.

The REST bodies are turned into tensors by TF Serving's JSON rules (row format,
`{"b64": ...}` for bytes) and sent to each signature from a TensorFlow-only
process; the gRPC example is executed as written against a TensorFlow-only
PredictionService (tf_only_grpc_server.py) serving the export.
"""

import base64
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import kvid
import kvid.export
from tests import processes
from tests.export.test_saved_model import (
    TOLERANCE,
    reference_inputs,
    run_tf_only_client,
    synthetic_clip,
)

ROOT = Path(__file__).parents[2]
MODEL = "r3d_18"  # the model the README's examples serve
SERVER = Path(__file__).with_name("tf_only_grpc_server.py")


def serving_section():
    """The README's serving section (its requests and client)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Export and serve with TensorFlow Serving", 1)[1]
    return re.split(r"\n## ", section, maxsplit=1)[0]


def code_blocks(language, text=None):
    return re.findall(rf"```{language}\n(.*?)```", text or serving_section(), flags=re.S)


def rest_instances_to_array(instances):
    """TF Serving's row format: stack the instances; `{"b64": ...}` objects are bytes."""

    def decode(value):
        if isinstance(value, dict):
            return base64.b64decode(value["b64"])
        if isinstance(value, list):
            return [decode(item) for item in value]
        return value

    array = np.array(decode(instances))
    return array if array.dtype.kind == "S" else array.astype(np.uint8)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A tiny 400-class softmax model like the README's, exported as `MODEL`."""
    spec = kvid.models.get_spec(MODEL)
    model = kvid.get_model(MODEL, **spec.test_kwargs)
    root = tmp_path_factory.mktemp("readme")
    return model, Path(kvid.export.export_saved_model(model, root / MODEL)), root


def expected_probabilities(model, frames):
    return model.predict(reference_inputs(frames, kvid.models.get_preprocessing(MODEL)), verbose=0)


def test_rest_bodies_run_on_their_signatures(export):
    model, path, root = export
    docs = (ROOT / "docs" / "serving.md").read_text()
    blocks = code_blocks("json") + code_blocks("json", docs)
    bodies = [json.loads(block) for block in blocks]
    assert sorted(body["signature_name"] for body in bodies) == sorted(kvid.export.SIGNATURES)
    requests = {}
    for body in bodies:
        assert set(body) == {"signature_name", "instances"}
        requests[f"readme:{body['signature_name']}"] = rest_instances_to_array(body["instances"])

    outputs, report = run_tf_only_client(path, requests, root / "rest")

    assert report["errors"] == {}
    frames = requests["readme:serving_default"]
    jpeg_pixels = np.array(
        [
            [
                tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE").numpy()
                for jpeg in clip
            ]
            for clip in requests["readme:jpeg_frames"]
        ]
    )
    videos = requests["readme:multi_clip"]
    expected = {
        "serving_default": expected_probabilities(model, frames),
        "jpeg_frames": expected_probabilities(model, jpeg_pixels),
        "multi_clip": expected_probabilities(model, videos.reshape(-1, *videos.shape[2:]))
        .reshape(*videos.shape[:2], -1)
        .mean(axis=1),
    }
    for signature, probabilities in expected.items():
        served = outputs[f"readme:{signature}:probabilities"]
        assert served.shape == (1, 400)
        assert np.abs(served - probabilities).max() <= TOLERANCE


def test_docker_command_rest_url_and_grpc_name_the_exported_model():
    section = serving_section()
    (docker,) = code_blocks("bash")[1:]
    assert f'source="$(pwd)/saved_models/{MODEL}",target=/models/{MODEL}' in docker
    assert f"-e MODEL_NAME={MODEL}" in docker and "tensorflow/serving" in docker
    assert f"http://localhost:8501/v1/models/{MODEL}:predict" in section
    assert f'model_name="{MODEL}"' in code_blocks("python")[-1]


def tensorflow_serving_path():
    spec = importlib.util.find_spec("tensorflow_serving")
    assert spec is not None, "install the test extra: the gRPC test needs tensorflow-serving-api"
    return str(Path(next(iter(spec.submodule_search_locations))).parent)


def test_grpc_example_predicts_through_a_prediction_service(export):
    model, path, _ = export
    server = subprocess.Popen(
        [sys.executable, "-I", str(SERVER), str(path), MODEL, tensorflow_serving_path()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = processes.read_line(server, timeout=240)
        port = re.fullmatch(r"PORT (\d+) KVID_IMPORTABLE False\n", ready).group(1)
        clip = synthetic_clip(np.random.default_rng(3), 4, 90, 120)
        example = code_blocks("python")[-1].replace("localhost:8500", f"localhost:{port}")
        namespace = {"clip": clip}
        exec(example, namespace)  # noqa: S102 (the README's own code)
    finally:
        server.kill()
        server.wait(timeout=60)

    expected = expected_probabilities(model, clip[np.newaxis])[0]
    assert np.abs(namespace["probabilities"] - expected).max() <= TOLERANCE
    # The named classes are the most probable ones (near-ties may come in any order).
    index = {name: i for i, name in enumerate(kvid.weights.kinetics400_categories())}
    named = expected[[index[name] for name in namespace["top_classes"].astype(str)]]
    best = -np.sort(-expected)[: kvid.export.saved_model.DEFAULT_TOP_K]
    np.testing.assert_allclose(named, best, atol=TOLERANCE)
