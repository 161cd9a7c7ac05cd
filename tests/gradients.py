"""A layer's outputs and gradients on whichever Keras backend the process runs.

Each backend differentiates its own way (a GradientTape, `jax.grad` of a
stateless call, torch's autograd); the layer tests compare kvid layers with
their Keras parents through this one function on every backend.
"""

import keras
import numpy as np


def outputs_and_gradients(layer, x, loss, training=None):
    """`[y, dloss/dx, dloss/dw for w in layer.trainable_weights]` as numpy arrays.

    `y = layer(x, training=training)`, `loss(y)` a scalar of `keras.ops`.
    Variable updates of the call (BatchNorm's moving statistics) are applied
    to the layer as a stateful call would.
    """
    backend = keras.backend.backend()
    x = np.asarray(x, "float32")
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            value = loss(y)
        gradients = tape.gradient(value, [x, *layer.trainable_weights])
    elif backend == "jax":
        import jax

        # `stateless_call` hands its keywords to `call`, which may not take `training`.
        kwargs = {} if training is None else {"training": training}

        def forward(x, trainable, non_trainable):
            y, non_trainable = layer.stateless_call(trainable, non_trainable, x, **kwargs)
            return loss(y), (y, non_trainable)

        trainable = [v.value for v in layer.trainable_variables]
        non_trainable = [v.value for v in layer.non_trainable_variables]
        (_, (y, updates)), (dx, dw) = jax.value_and_grad(forward, (0, 1), has_aux=True)(
            x, trainable, non_trainable
        )
        for variable, value in zip(layer.non_trainable_variables, updates, strict=True):
            variable.assign(value)
        gradients = [dx, *dw]
    elif backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        y = layer(x, training=training)
        loss(y).backward()
        gradients = [x.grad, *(w.value.grad for w in layer.trainable_weights)]
    else:
        raise NotImplementedError(f"No gradients for the {backend!r} backend in the tests.")
    return [keras.ops.convert_to_numpy(t) for t in [y, *gradients]]
