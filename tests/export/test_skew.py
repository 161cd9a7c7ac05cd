"""No train-serve skew: evaluation feeds the model exactly what the exported graph computes.

On real video (10 frames of the UCF101 cricket clip of DeepMind's I3D repository) re-encoded at
several frame sizes, landscape, portrait and square:

- the float clip `kvid.data`'s evaluation views feed the model equals what the
  SavedModel's `serving_default` computes from the same uint8 frames (the model
  exported here is a Flatten, so its "probabilities" are its input clip);
- `kvid-evaluate`'s per-video probabilities equal the SavedModel's `multi_clip`
  on every video of a small validation set;
- the clips of a TFRecord dataset equal what `jpeg_frames` computes from the
  same JPEG bytes.
"""

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kvid
import kvid.export
from kvid import evaluation, preprocessing
from kvid.data import tfrecord
from kvid.io import write_video

# Every other of the first 20 frames of the UCF101 sample of DeepMind's kinetics-i3d
# repository (Apache-2.0), 224x224, as H.264: see tests/fixtures/README.md.
REAL_VIDEO = Path(__file__).parents[1] / "fixtures" / "cricket_10f.mp4"
SIZES = [(60, 80), (80, 44), (56, 56), (34, 98)]  # height, width: even, for H.264
NUM_FRAMES = 4
TOLERANCE = 1e-5
# Two conventions: a fixed (height, width) resize as torchvision's video ResNets, and a
# short-side resize with another pixel range as S3D-G; both small.
CONVENTIONS = {
    "fixed_resize": preprocessing.rescaled(kvid.models.get_preprocessing("r3d_18"), 16),
    "short_side": dataclasses.replace(
        kvid.models.get_preprocessing("s3dg"), crop_size=16, resize=19, pixel_range=(-1.0, 1.0)
    ),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """`root/<class>/<h>x<w>.mp4`: 10 real frames resized to each size, two classes."""
    frames = kvid.io.read_video(str(REAL_VIDEO))
    root = tmp_path_factory.mktemp("real")
    for index, size in enumerate(SIZES):
        resized = tf.image.resize(frames, size, antialias=True).numpy()
        folder = root / ("a" if index % 2 == 0 else "b")
        folder.mkdir(exist_ok=True)
        write_video(str(folder / f"{size[0]}x{size[1]}.mp4"), np.round(resized).astype(np.uint8))
    return root


def exported_flatten(convention, folder):
    """A SavedModel whose "probabilities" are its input clip, flattened."""
    inputs = keras.Input((NUM_FRAMES, *convention.crop_shape, 3))
    flatten = keras.Model(inputs, keras.layers.Flatten()(inputs))
    export = kvid.export.export_saved_model(
        flatten, folder, preprocessing=convention, logits=False, top_k=1
    )
    return tf.saved_model.load(export).signatures


@pytest.mark.parametrize("name", list(CONVENTIONS))
def test_evaluation_clips_are_the_served_clips(videos, tmp_path, name):
    convention = CONVENTIONS[name]
    serve = exported_flatten(convention, tmp_path / "flat")["serving_default"]
    dataset = kvid.data.video_evaluation_dataset(
        str(videos), num_clips=1, num_frames=NUM_FRAMES, model=convention
    )
    checked = set()
    for views, _, video_id in dataset:
        path = video_id.numpy().decode()
        frames = kvid.io.read_video(path)
        indices = kvid.preprocessing.sample_indices(len(frames), NUM_FRAMES)
        served = serve(frames=tf.constant(frames[indices.numpy()][None]))["probabilities"]
        np.testing.assert_allclose(
            views.numpy().reshape(1, -1), served.numpy(), atol=TOLERANCE, rtol=0
        )
        checked.add(Path(path).stem)
    assert checked == {f"{h}x{w}" for h, w in SIZES}


def test_evaluate_probabilities_are_the_saved_models(videos, tmp_path):
    convention = CONVENTIONS["fixed_resize"]
    spec = kvid.models.get_spec("r3d_18")
    model = spec.build(
        **spec.test_kwargs, classes=2, input_shape=(NUM_FRAMES, *convention.crop_shape, 3)
    )
    kvid.layers.set_model_preprocessing(model, convention)
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    result = evaluation.evaluate_directory(str(model_path), str(videos), num_clips=2, batch_size=3)
    # The SavedModel of the saved file finds its convention in the file, not in an argument.
    loaded = keras.saving.load_model(model_path, safe_mode=True)
    export = kvid.export.export_saved_model(loaded, tmp_path / "export")
    serve = tf.saved_model.load(export).signatures["multi_clip"]
    assert len(result.video_ids) == len(SIZES)
    for video_id, probabilities in zip(result.video_ids, result.video_probabilities, strict=True):
        frames = kvid.io.read_video(video_id.decode())
        indices = kvid.preprocessing.multi_clip_indices(len(frames), NUM_FRAMES, num_clips=2)
        clips = frames[indices.numpy()][None]  # [1 video, 2 clips, T, H, W, 3]
        served = serve(clips=tf.constant(clips))["probabilities"].numpy()[0]
        np.testing.assert_allclose(probabilities, served, atol=TOLERANCE, rtol=0)


def test_tfrecord_clips_are_the_jpeg_signatures_clips(videos, tmp_path):
    # The same JPEG bytes, read by the TFRecord dataset and sent to `jpeg_frames`, give the
    # same clip: one JPEG decode (a faster DCT on one side differs by a pixel level or two).
    convention = CONVENTIONS["short_side"]
    serve = exported_flatten(convention, tmp_path / "flat")["jpeg_frames"]
    tfrecord.convert_directory(str(videos), str(tmp_path / "records"), num_shards=1, verbose=False)
    pattern = str(tmp_path / "records" / "*.tfrecord")
    dataset = kvid.data.video_dataset_from_tfrecords(
        pattern, label_mode=None, batch_size=None, shuffle=False, training=False,
        num_frames=NUM_FRAMES, model=convention,
    )  # fmt: skip
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern))
    count = 0
    for clip, record in zip(dataset, records, strict=True):
        jpegs, _, _ = tfrecord.parse_record(record)
        indices = kvid.preprocessing.sample_indices(len(jpegs), NUM_FRAMES).numpy()
        served = serve(jpeg_frames=tf.gather(jpegs, indices)[None])["probabilities"]
        np.testing.assert_allclose(
            clip.numpy().reshape(1, -1), served.numpy(), atol=TOLERANCE, rtol=0
        )
        count += 1
    assert count == len(SIZES)
