"""preprocess_input and decode_predictions, the keras.applications helpers."""

import numpy as np
import pytest

import kvid
from kvid import Preprocessing
from kvid.weights import kinetics400_categories as kinetics400_labels


def test_torchvision_convention_scales_then_normalises():
    pixels = np.array([[[[[0, 128, 255]]]]], dtype="uint8")  # one pixel, channels last
    expected = (np.array([0, 128, 255]) / 255 - np.array([0.43216, 0.394666, 0.37645])) / np.array(
        [0.22803, 0.22145, 0.216989]
    )
    np.testing.assert_allclose(
        kvid.preprocess_input(pixels, "r2plus1d_18")[0, 0, 0, 0], expected, rtol=1e-6
    )


def test_minus_one_to_one_range():
    convention = Preprocessing(num_frames=16, crop_size=224, resize=256, pixel_range=(-1.0, 1.0))
    out = kvid.preprocess_input(np.array([0.0, 127.5, 255.0]), convention)
    np.testing.assert_allclose(out, [-1.0, 0.0, 1.0], atol=1e-6)


def test_kinetics_labels_are_the_400_classes_in_order():
    labels = kinetics400_labels()
    assert len(labels) == 400 == len(set(labels))
    assert labels[0] == "abseiling" and labels[-1] == "zumba"


def test_decode_predictions_returns_best_classes_first():
    scores = np.zeros((2, 400), "float32")
    scores[0, [5, 9]] = [0.7, 0.2]
    scores[1, 399] = 1.0
    decoded = kvid.decode_predictions(scores, top=2)
    labels = kinetics400_labels()
    assert decoded[0] == [(5, labels[5], pytest.approx(0.7)), (9, labels[9], pytest.approx(0.2))]
    assert decoded[1][0] == (399, "zumba", 1.0)


def test_decode_predictions_with_own_class_names():
    assert kvid.decode_predictions(np.array([[0.1, 0.9]]), top=1, class_names=["a", "b"]) == [
        [(1, "b", pytest.approx(0.9))]
    ]


def test_decode_predictions_needs_names_for_every_class():
    with pytest.raises(ValueError, match=r"preds.shape=\(1, 7\)"):
        kvid.decode_predictions(np.zeros((1, 7)))


@pytest.mark.parametrize("key", kvid.models.list_models())
def test_every_model_records_its_convention(key):
    spec = kvid.models.get_spec(key)
    model = spec.build(**spec.test_kwargs)
    assert kvid.layers.model_preprocessing(model) == spec.preprocessing
