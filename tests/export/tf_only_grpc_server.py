"""A stand-in for TF Serving's gRPC PredictionService: plain TensorFlow, no kvid.

Run as `python -I tf_only_grpc_server.py <saved_model_dir> <model_name> [<extra sys.path>]`.
Serves `Predict` the way TF Serving does (request tensors fed to the named
signature, outputs returned as TensorProtos) on a free localhost port, and
prints `PORT <port> KVID_IMPORTABLE <bool>` once ready (kvid is blocked even
where it is installed, as TF Serving has none). Runs until killed.
"""

import importlib.util
import sys
from concurrent import futures

if len(sys.argv) > 3:  # where tensorflow-serving-api lives, if not in site-packages
    sys.path.append(sys.argv[3])

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict on one loaded SavedModel."""

    def __init__(self, saved_model_dir, model_name):
        self.loaded = tf.saved_model.load(saved_model_dir)
        self.model_name = model_name

    def Predict(self, request, context):  # noqa: N802 (the gRPC method name)
        """Runs the requested signature on the request's tensors."""
        if request.model_spec.name != self.model_name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no model {request.model_spec.name!r}")
        signature_name = request.model_spec.signature_name or "serving_default"
        if signature_name not in self.loaded.signatures:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"no signature {signature_name!r}")
        signature = self.loaded.signatures[signature_name]
        if set(request.inputs) != set(signature.structured_input_signature[1]):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "input size does not match signature")
        inputs = {key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
        try:
            outputs = signature(**inputs)
        except (tf.errors.InvalidArgumentError, TypeError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, tensor in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(tensor.numpy()))
        return response


def main(saved_model_dir, model_name, *_):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(saved_model_dir, model_name), server
    )
    port = server.add_insecure_port("localhost:0")
    server.start()
    print(f"PORT {port} KVID_IMPORTABLE {importlib.util.find_spec('kvid') is not None}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.modules["kvid"] = None  # TF Serving has no kvid: importing it now raises ImportError.
    main(*sys.argv[1:])
