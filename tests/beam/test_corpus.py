"""Videos on another Beam filesystem are read through `FileSystems`, as local ones are."""

import os

import pytest
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.localfilesystem import LocalFileSystem

from kvid.beam import local_file
from kvid.io.decode import VideoDecodeError, probe

SCHEME = "kvidtest"


class _PrefixedFileSystem(LocalFileSystem):
    """Local files under `kvidtest://`: a filesystem Beam knows that is not the local one."""

    @classmethod
    def scheme(cls):
        return SCHEME

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        local = path.removeprefix(f"{SCHEME}://")
        return super().open(local, mime_type, compression_type or CompressionTypes.AUTO)


def test_a_remote_video_is_read_from_a_local_copy_removed_after(corpus):
    _, good, _ = corpus
    video = good[0]
    with local_file(video) as path:
        assert path == video  # a local path is read in place
    with local_file(f"{SCHEME}://{video}") as path:
        assert path != video and os.path.basename(path) == os.path.basename(video)
        assert open(path, "rb").read() == open(video, "rb").read()
        assert probe(path).num_frames == probe(video).num_frames
    assert not os.path.exists(path)


def test_an_unreadable_remote_video_is_a_decode_error_naming_it(tmp_path):
    missing = f"{SCHEME}://{tmp_path}/missing.mp4"
    with pytest.raises(VideoDecodeError, match=f"Cannot read video '{missing}'"):
        with local_file(missing):
            pass
