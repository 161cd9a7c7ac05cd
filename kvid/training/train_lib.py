"""`train`: one call from a model key and a video folder to a trained, evaluated model."""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import tensorflow as tf

from kvid.data import synthetic
from kvid.models import Preprocessing, get_model, get_preprocessing, preprocess_input
from kvid.training import callbacks as callbacks_lib
from kvid.training import evaluation, model_files, schedules, video_folder
from kvid.training import strategy as strategy_lib

OPTIMIZERS = ("adam", "sgd")
DEFAULT_SYNTHETIC_DIR = os.path.join(
    os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "datasets"
)


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        model: the trained model, with the weights of its best validation epoch.
        history: the per-epoch logs of this process's `fit` (resumed epochs only).
        val_accuracy: clip top-1 accuracy on the validation split.
        reversed_val_accuracy: the same with every clip played backwards; far
            below `val_accuracy` when the model reads temporal order.
        seconds: wall time of training and evaluation (without making the data).
        class_names: the class of each output.
        preprocessing: the input convention the model was trained with (its
            clip length and size), for `kvid.export.export_saved_model`.
        is_chief: whether this process writes the run's shared outputs.
    """

    model: keras.Model
    history: dict
    val_accuracy: float
    reversed_val_accuracy: float
    seconds: float
    class_names: list[str]
    preprocessing: Preprocessing
    is_chief: bool

    def summary(self) -> str:
        """The one-line result: `val_accuracy=0.973 reversed_val_accuracy=0.121 seconds=412`."""
        return (
            f"val_accuracy={self.val_accuracy:.3f} "
            f"reversed_val_accuracy={self.reversed_val_accuracy:.3f} seconds={self.seconds:.0f}"
        )


def freeze_batch_norm_except_first(model: keras.Model) -> int:
    """Freezes every BatchNormalization layer but the first (for long clips).

    Frozen layers use their moving statistics and keep their scale and shift,
    as recommended when fine-tuning on long clips with small batches.

    Returns:
        How many layers were frozen.
    """
    norms = [layer for layer in model._flatten_layers() if _is_batch_norm(layer)]
    for layer in norms[1:]:
        layer.trainable = False
    return max(len(norms) - 1, 0)


def _is_batch_norm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def builtin_dataset(
    *,
    num_frames: int = 16,
    size: int = 64,
    train_per_class: int = 375,
    validation_per_class: int = 125,
    seed: int = 0,
    directory: str = DEFAULT_SYNTHETIC_DIR,
) -> str:
    """Writes (once) the built-in synthetic dataset and returns its root.

    The folder name records the arguments, so different sizes coexist.
    """
    name = (
        f"kvid_synthetic_v{synthetic.VERSION}_{num_frames}f_{size}px_"
        f"{train_per_class}-{validation_per_class}_s{seed}"
    )
    root = os.path.join(directory, name)
    synthetic.write_dataset(
        root,
        train_per_class=train_per_class,
        validation_per_class=validation_per_class,
        num_frames=num_frames,
        size=size,
        seed=seed,
    )
    return root


def make_optimizer(
    name: str,
    learning_rate,
    *,
    weight_decay: float = 0.0,
    gradient_accumulation_steps: int | None = None,
) -> keras.optimizers.Optimizer:
    """Adam or SGD (momentum 0.9), with decoupled weight decay off biases and norms."""
    if name not in OPTIMIZERS:
        raise ValueError(f"`optimizer` must be one of {OPTIMIZERS}. Received: optimizer={name!r}")
    kwargs = dict(
        learning_rate=learning_rate,
        weight_decay=weight_decay or None,
        gradient_accumulation_steps=gradient_accumulation_steps,
    )
    if name == "sgd":
        optimizer = keras.optimizers.SGD(momentum=0.9, **kwargs)
    else:
        optimizer = keras.optimizers.Adam(**kwargs)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def _labelled_clips(directory, *, model, classes=None, **kwargs):
    """`(model inputs, one-hot labels)` batches of one split, and its class names."""
    dataset, names, count = video_folder.clip_dataset(directory, **kwargs)
    if classes is not None and names != classes:
        raise ValueError(
            f"The classes of {directory!r} differ from the train split's. "
            f"Received: {names}, expected {classes}"
        )

    def prepare(clips, labels):
        return preprocess_input(clips, model), tf.one_hot(labels, len(names))

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE), names, count


def clip_accuracy(net, directory, *, model, num_frames, size, batch_size, reverse=False):
    """Top-1 accuracy on the centre clip of every video of `directory` (optionally reversed)."""
    dataset, _, _ = video_folder.clip_dataset(
        directory, num_frames=num_frames, size=size, batch_size=batch_size, reverse=reverse
    )
    views = dataset.unbatch().enumerate().batch(batch_size)
    views = views.map(lambda ids, clip: (preprocess_input(clip[0], model), clip[1], ids))
    return evaluation.evaluate(net, views).clip_top1


def train(
    model: str = "s3dg",
    *,
    data_dir: str | None = None,
    work_dir: str = os.path.join("runs", "train"),
    model_kwargs: dict | None = None,
    epochs: int = 10,
    batch_size: int = 16,
    num_frames: int = 16,
    size: int = 64,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    schedule: str = "cosine",
    warmup_epochs: float = 1.0,
    milestones: tuple[int, ...] = (),
    gamma: float = 0.1,
    weight_decay: float = 0.0,
    label_smoothing: float = 0.0,
    gradient_accumulation_steps: int | None = None,
    freeze_batch_norm: bool = False,
    mixed_precision: str | None = None,
    strategy: str = "auto",
    jit_compile: bool | None = None,
    time_budget: float | None = None,
    synthetic_kwargs: dict | None = None,
    seed: int = 0,
    verbose="auto",
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
    resume: bool = True,
) -> TrainResult:
    """Trains a registered model on a class-per-folder video dataset.

    A run killed at any point and restarted with the same `work_dir` resumes
    from its last finished epoch. The best epoch by validation accuracy is kept.

    Args:
        model: a registry key (see `kvid.list_models()`).
        data_dir: a folder with `train/` and `validation/` class-per-folder
            splits; `None` uses the built-in synthetic dataset.
        work_dir: checkpoints (`best.keras`), backups, the CSV and TensorBoard
            logs, and `class_names.txt` (one output's class per line).
        model_kwargs: extra factory arguments, e.g. `{"alpha": 0.25}`.
        epochs: epochs to train.
        batch_size: global batch size (split over replicas).
        num_frames: frames per clip.
        size: the clips' side: the short side is resized to it, then centre-cropped.
        optimizer: `"adam"` or `"sgd"` (momentum 0.9).
        learning_rate: peak learning rate (apply `schedules.scale_learning_rate`
            yourself when changing the batch size of a tuned recipe).
        schedule: `"constant"`, `"step"` or `"cosine"`, after `warmup_epochs`.
        warmup_epochs: epochs of linear warm-up.
        milestones: epochs at which `"step"` multiplies the rate by `gamma`.
        gamma: the step decay factor.
        weight_decay: decoupled weight decay (not on biases or norms).
        label_smoothing: cross-entropy label smoothing, e.g. 0.1.
        gradient_accumulation_steps: average gradients over this many batches
            before each update (a larger effective batch in the same memory).
        freeze_batch_norm: freeze every BatchNormalization but the first.
        mixed_precision: `None`, `"mixed_float16"` or `"mixed_bfloat16"`.
        strategy: see `kvid.training.strategy.get_strategy`.
        jit_compile: XLA; `None` enables it only with a GPU (XLA's CPU Conv3D is slower).
        time_budget: stop after the epoch that would overrun this many seconds.
        synthetic_kwargs: arguments of `builtin_dataset` (with `data_dir=None`).
        seed: seed of the shuffling and of the weights initialisation.
        verbose: `fit`'s verbosity (`"auto"` shows a progress bar).
        callbacks: more callbacks, after the default ones.
        resume: resume the run in `work_dir` from its last backed-up epoch
            (a finished run trains no more epochs); `False` starts afresh.

    Returns:
        A `TrainResult`.
    """
    if data_dir is None:
        data_dir = builtin_dataset(
            num_frames=num_frames, size=size, seed=seed, **(synthetic_kwargs or {})
        )
    start = time.monotonic()
    distribution = strategy_lib.get_strategy(strategy)
    keras.utils.set_random_seed(seed)
    common = dict(model=model, num_frames=num_frames, size=size, batch_size=batch_size)
    train_data, class_names, train_count = _labelled_clips(
        os.path.join(data_dir, "train"), shuffle=True, seed=seed, drop_remainder=True, **common
    )
    val_data, _, _ = _labelled_clips(
        os.path.join(data_dir, "validation"), classes=class_names, **common
    )
    steps_per_epoch = train_count // batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"The train split of {data_dir!r} has {train_count} videos, fewer than one batch. "
            f"Received: batch_size={batch_size}"
        )
    if jit_compile is None:
        jit_compile = bool(tf.config.list_physical_devices("GPU"))
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if mixed_precision:
            keras.mixed_precision.set_global_policy(mixed_precision)
        with distribution.scope():
            net = get_model(
                model,
                weights=None,
                classes=len(class_names),
                input_shape=(num_frames, size, size, 3),
                # Under mixed precision the softmax runs in float32 (Keras' advice).
                classifier_activation=None if mixed_precision else "softmax",
                **(model_kwargs or {}),
            )
            if mixed_precision:
                outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(
                    net.outputs[0]
                )
                net = keras.Model(net.input, outputs, name=net.name)
            if freeze_batch_norm:
                freeze_batch_norm_except_first(net)
            rate = schedules.make_schedule(
                schedule,
                learning_rate,
                steps_per_epoch=steps_per_epoch,
                epochs=epochs,
                warmup_epochs=warmup_epochs,
                milestones=milestones,
                gamma=gamma,
            )
            net.compile(
                optimizer=make_optimizer(
                    optimizer,
                    rate,
                    weight_decay=weight_decay,
                    gradient_accumulation_steps=gradient_accumulation_steps,
                ),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                metrics=[
                    keras.metrics.CategoricalAccuracy(name="accuracy"),
                    keras.metrics.TopKCategoricalAccuracy(min(5, len(class_names)), name="top5"),
                ],
                jit_compile=jit_compile,
            )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    run_callbacks = callbacks_lib.default_callbacks(work_dir, strategy=distribution, resume=resume)
    if time_budget:
        run_callbacks.append(callbacks_lib.TimeBudget(time_budget))
    history = net.fit(
        train_data,
        validation_data=val_data,
        epochs=epochs,
        callbacks=[*run_callbacks, *callbacks],
        verbose=verbose,
    )
    out_dir = callbacks_lib.worker_dir(work_dir, distribution)
    model_files.write_class_names(out_dir, class_names)
    best = os.path.join(out_dir, callbacks_lib.BEST_MODEL)
    if os.path.exists(best):
        net.set_weights(keras.saving.load_model(best, compile=False).get_weights())
    accuracy = {
        reverse: clip_accuracy(net, os.path.join(data_dir, "validation"), reverse=reverse, **common)
        for reverse in (False, True)
    }
    return TrainResult(
        model=net,
        history=history.history,
        val_accuracy=accuracy[False],
        reversed_val_accuracy=accuracy[True],
        seconds=time.monotonic() - start,
        class_names=class_names,
        # Clips were resized to a short side of `size` and centre-cropped.
        preprocessing=dataclasses.replace(
            get_preprocessing(model), num_frames=num_frames, crop_size=size, resize=size
        ),
        is_chief=strategy_lib.is_chief(distribution),
    )
