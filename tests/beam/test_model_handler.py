"""`KvidModelHandler` on a `.keras` model and on its SavedModel export gives `kvid-predict`'s."""

import os

import numpy as np
import pytest

import kvid
from kvid import inference
from kvid.beam import KvidModelHandler
from kvid.beam.inference import model_inputs
from kvid.models import load_model
from tests.beam.conftest import CLASSES


@pytest.fixture(scope="module")
def export_path(model_path, tmp_path_factory):
    model = load_model(model_path)
    return kvid.export.export_saved_model(model, str(tmp_path_factory.mktemp("export") / "m"))


def _clips(video, inputs, stride=4):
    clips = inference.video_clips(
        video, inputs.convention, num_frames=inputs.num_frames, stride=stride
    )
    return [clip for batch in clips.batches for clip in batch.clips]


def test_one_batch_of_clips_of_several_videos_scores_as_kvid_predict(
    corpus, model_path, export_path
):
    _, good, _ = corpus
    videos = good[:2]  # the cricket fixture and a written video: different frame sizes
    model = load_model(model_path)
    expected = np.concatenate(
        [
            inference.predict_video(model, v, class_names=CLASSES, stride=4, batch_size=2).probs
            for v in videos
        ]
    )
    labels = os.path.join(os.path.dirname(model_path), "class_names.txt")
    for path in (model_path, export_path):
        inputs = model_inputs(path, labels_path=labels)
        assert inputs.class_names == tuple(CLASSES) and inputs.num_frames == 8
        handler = KvidModelHandler(path, batch_size=64)
        batch = [clip for video in videos for clip in _clips(video, inputs)]
        results = handler.run_inference(batch, handler.load_model())
        scores = np.stack([result.inference for result in results])
        np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert model_inputs(export_path).convention is None


def test_an_export_rejects_a_convention_override(export_path):
    with pytest.raises(ValueError, match="preprocesses in its graph"):
        model_inputs(export_path, model_name="r3d_18")
