"""Shared helpers of the weights tests."""

import contextlib
import functools
import http.server
import os
import threading
import urllib.parse


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass


@contextlib.contextmanager
def serve(directory, requests=None):
    """Serves `directory` on 127.0.0.1 for the block; appends each GET path to `requests`."""

    class Handler(_Handler):
        def do_GET(self):
            if requests is not None:
                requests.append(self.path)
            super().do_GET()

    handler = functools.partial(Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def mirror_path(root, url):
    """Where `url` lives in a `$KVID_WEIGHTS_MIRROR` tree rooted at `root` (`<host>/<path>`)."""
    parsed = urllib.parse.urlparse(url)
    path = os.path.join(str(root), parsed.netloc, *parsed.path.lstrip("/").split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def write_tf_checkpoint(prefix, arrays):
    """Writes `arrays` under their names as a TF checkpoint `prefix` (.index + .data)."""
    import tensorflow as tf

    names = sorted(arrays)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(arrays[name]) for name in names],
    )
