"""Uses an exported SavedModel as TF Serving does: plain TensorFlow, no kvid.

Run as `python -I tf_only_client.py <saved_model_dir> <requests.npz> <out_dir>`
(`-I` keeps the repository off `sys.path`, and kvid is blocked even where it is
installed, so any use of kvid by the SavedModel fails).

`requests.npz` holds one array per call, keyed `<case>:<signature>`. Writes
`outputs.npz` (`<case>:<signature>:<output>`) and `report.json`: the error
message of each call that failed, the signatures' input and output keys, and
the ops of the graph and its function library that plain TensorFlow does not
register.
"""

import importlib.util
import json
import os
import sys

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry


def unregistered_ops(saved_model_pb_path):
    """Op types in the graph and its function library that TensorFlow does not register."""
    saved_model = saved_model_pb2.SavedModel()
    with open(saved_model_pb_path, "rb") as f:
        saved_model.ParseFromString(f.read())
    unknown = set()
    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        functions = {function.signature.name for function in library.function}
        nodes = [*meta_graph.graph_def.node]
        for function in library.function:
            nodes.extend(function.node_def)
        for node in nodes:
            # A node may call a library function directly by its name.
            if node.op not in functions and op_def_registry.get(node.op) is None:
                unknown.add(node.op)
    return sorted(unknown)


def main(saved_model_dir, requests_path, out_dir):
    loaded = tf.saved_model.load(saved_model_dir)
    report = {
        "kvid_importable": importlib.util.find_spec("kvid") is not None,
        "signatures": {
            name: {
                "inputs": sorted(fn.structured_input_signature[1]),
                "outputs": sorted(fn.structured_outputs),
            }
            for name, fn in loaded.signatures.items()
        },
        "errors": {},
        "unregistered_ops": unregistered_ops(os.path.join(saved_model_dir, "saved_model.pb")),
    }
    outputs = {}
    with np.load(requests_path) as requests:
        for key in requests.files:
            signature = loaded.signatures[key.split(":")[1]]
            (input_name,) = signature.structured_input_signature[1]
            value = requests[key]
            # npz stores strings as fixed-width bytes, which drop trailing NULs:
            # harmless here, JPEG files end with the EOI marker FFD9.
            if value.dtype.kind == "S":
                value = value.astype(object)
            try:
                result = signature(**{input_name: tf.constant(value)})
            except tf.errors.InvalidArgumentError as error:
                report["errors"][key] = error.message
                continue
            for name, tensor in result.items():
                value = tensor.numpy()
                outputs[f"{key}:{name}"] = value.astype(bytes) if value.dtype == object else value
    np.savez(os.path.join(out_dir, "outputs.npz"), **outputs)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    sys.modules["kvid"] = None  # TF Serving has no kvid: importing it now raises ImportError.
    main(*sys.argv[1:])
