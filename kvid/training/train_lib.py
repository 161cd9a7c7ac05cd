"""`train`: from a `TrainConfig` to a trained, evaluated and exported model, in small steps.

The steps, each usable alone: `clip_preprocessing` (the one transform of the
run), `make_datasets` (`kvid.data`: random clips and augmentation for
training, the evaluation views of `video_evaluation_dataset` for validation),
`build_model`, `compile_model` (both under the run's strategy and mixed
precision in `make_model`), `make_callbacks` (every callback of a run is
wired there), `fit`, `evaluate_run` and `export_run`. The planner's
transitions (`kvid.planning.plan`) train with these same steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf

from kvid import data as data_lib
from kvid import evaluation, schedules
from kvid import export as export_lib
from kvid import preprocessing as preprocessing_lib
from kvid.data import synthetic
from kvid.io import atomic
from kvid.io.class_names import write_class_names
from kvid.layers import flat_layers, set_model_preprocessing
from kvid.models import get_model, get_preprocessing
from kvid.preprocessing import Preprocessing
from kvid.training import budget as budget_lib
from kvid.training import callbacks as callbacks_lib
from kvid.training import strategy as strategy_lib

OPTIMIZERS = ("adam", "sgd")
CLIP_LABELS = data_lib.sources.CLIP_LABELS
SCHEDULES = ("constant", "step", "cosine")
MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")
DEFAULT_SYNTHETIC_DIR = os.path.join(
    os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "datasets"
)


def _option(default, help_text: str, *, flag: bool = True, kind=None, enum=None):
    """A `TrainConfig` field with the help text (and type) of its generated flag."""
    metadata = {"help": help_text, "flag": flag, "kind": kind, "enum": enum}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; `apps/train.py` makes one flag per field.

    The defaults are for real data: a full-width model (the factory's
    defaults) trained for `epochs`, clips resized and cropped by the model's
    registered convention. `TrainConfig.demo()` is the built-in dataset's
    quick run (quarter-width S3D-G on 64-pixel clips, a time budget).
    """

    model: str = _option("s3dg", "Registry key of the model (see kvid.list_models()).")
    data_dir: str | None = _option(
        None,
        "Folder with train/ and validation/ class folders (with --multi_label: train.csv and "
        "validation.csv annotation files, paths relative to it); unset: the built-in synthetic "
        "dataset, with the demo's settings for every flag left unset.",
        kind=str,
    )
    multi_label: bool = _option(
        False,
        "Several labels per video: sigmoid head, binary cross-entropy, PR-AUC while training, "
        "mAP (Charades protocol) at the end; the built-in dataset's two-polygon variant.",
    )
    clip_labels: str = _option(
        "video",
        "With --multi_label: a clip's labels are its video's, or those of the annotated "
        "segments (Charades' actions) under its frames.",
        enum=CLIP_LABELS,
    )
    view_aggregation: str | None = _option(
        None,
        "How a video's views are combined in the final score; unset: mean (single-label), max "
        "(multi-label).",
        enum=evaluation.AGGREGATIONS,
    )
    work_dir: str = _option(
        os.path.join("runs", "train"), "Checkpoints, backups and logs; rerun to resume."
    )
    resume: bool = _option(
        True,
        "Resume the run in work_dir from its last backed-up epoch (a finished run trains no "
        "more epochs); False (--noresume) starts afresh.",
    )
    export_dir: str | None = _option(
        None,
        "Export the SavedModel to <export_dir>/<model>/<version> ('' or unset: skip).",
        kind=str,
    )
    alpha: float | None = _option(None, "Width multiplier; unset: the factory's.", kind=float)
    model_kwargs: Mapping = _option({}, "More factory arguments.", flag=False)
    epochs: int = _option(10, "Epochs to train (the cosine ends with the last).")
    batch_size: int = _option(16, "Global batch size.")
    num_frames: int = _option(16, "Frames per clip.")
    size: int | None = _option(
        None,
        "Crop side in pixels; unset: the model's registered crop (the built-in dataset: its "
        "frame size). Another size scales the model's resize with it.",
        kind=int,
    )
    frame_step: int = _option(1, "Step between sampled frames.")
    sampling: str = _option("consecutive", "Frames of a clip.", enum=preprocessing_lib.SAMPLINGS)
    clips_per_video: int = _option(1, "Training clips drawn from each video per epoch.")
    steps_per_epoch: int | None = _option(
        None,
        "Training batches per epoch, drawn from the repeated clips; unset: one pass over them "
        "(`fit_budget` sets it when its plan trains fewer).",
        flag=False,
    )
    augment: object = _option(
        True,
        "Training augmentation: horizontal flips (off on the built-in dataset, whose "
        "left/right classes a flip would swap); the library also takes Keras layers.",
        kind=bool,
    )
    scale_range: tuple[float, float] = _option(
        (1.0, 1.25), "Training scale jitter of the resized frames before the random crop."
    )
    eval_clips: int = _option(1, "Evenly spaced clips per validation video in the final score.")
    reversed_evaluation: bool = _option(
        False, "Also score every validation clip played backwards (decodes validation twice)."
    )
    optimizer: str = _option("adam", "The optimizer.", enum=OPTIMIZERS)
    learning_rate: float = _option(1e-3, "Peak learning rate.")
    schedule: str = _option("cosine", "After warm-up.", enum=SCHEDULES)
    warmup_epochs: float = _option(1.0, "Epochs of linear warm-up.")
    milestones: tuple[int, ...] = _option(
        (), "Epochs at which the 'step' schedule decays.", kind=int
    )
    gamma: float = _option(0.1, "Decay factor of the 'step' schedule.")
    weight_decay: float = _option(0.0, "Decoupled weight decay (not on biases or norms).")
    label_smoothing: float = _option(0.0, "Label smoothing, e.g. 0.1.")
    gradient_accumulation_steps: int | None = _option(None, "Batches per update (>= 2).", kind=int)
    freeze_batch_norm: bool = _option(False, "Freeze all BatchNorm layers but the first.")
    mixed_precision: str | None = _option(
        None, "Mixed precision policy.", enum=MIXED_PRECISION_POLICIES
    )
    strategy: str = _option("auto", "Distribution strategy.", enum=strategy_lib.STRATEGIES)
    jit_compile: bool | None = _option(None, "XLA; unset: only with a GPU.", kind=bool)
    time_budget: float | None = _option(
        None, "Stop after the epoch that would overrun this many seconds.", kind=float
    )
    fit_budget: bool = _option(
        False,
        "Time the model's training step and the input pipeline first, then scale clips per "
        "epoch and clip side so that the whole run (from the start, export included) fits "
        "--time_budget (kvid.training.budget), keeping every epoch; the budget then only "
        "guards against a plan overrunning by half.",
    )
    train_per_class: int = _option(
        375,
        "Built-in dataset: training videos per class (multi-label: as many videos in all, two "
        "classes each).",
    )
    validation_per_class: int = _option(125, "Built-in dataset: validation videos per class.")
    seed: int = _option(0, "Seed of the data and the initialisation.")
    verbose: object = _option("auto", "`fit`'s verbosity.", flag=False)

    def __post_init__(self):
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("mixed_precision", (None, *MIXED_PRECISION_POLICIES)),
            ("strategy", strategy_lib.STRATEGIES),
            ("sampling", preprocessing_lib.SAMPLINGS),
            ("clip_labels", CLIP_LABELS),
            ("view_aggregation", (None, *evaluation.AGGREGATIONS)),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")
        for name in ("epochs", "batch_size", "num_frames", "clips_per_video", "eval_clips"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if self.steps_per_epoch is not None and (
            not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1
        ):
            raise ValueError(
                "`steps_per_epoch` must be a positive int or None. "
                f"Received: steps_per_epoch={self.steps_per_epoch!r}"
            )
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        object.__setattr__(self, "scale_range", tuple(float(s) for s in self.scale_range))

    @classmethod
    def demo(cls, **overrides) -> TrainConfig:
        """The built-in dataset's quick run: the main job (`python -m apps.train`).

        Quarter-width S3D-G on 64-pixel, 16-frame clips for 8 epochs, their work
        planned to fit the whole run in 540 seconds, scoring reversed clips too
        (the dataset's classes differ only in frame order); 16 epochs with
        `multi_label=True`. `overrides` replace any of these.
        """
        demo = dict(
            model="s3dg",
            alpha=0.25,
            epochs=8,
            size=64,
            time_budget=540.0,
            fit_budget=True,
            train_per_class=250,
            validation_per_class=64,
            reversed_evaluation=True,
        )
        if overrides.get("multi_label"):
            # Two labels a video learn more slowly: 8 epochs (752 steps at 48 px) reached a val
            # mAP of 0.53, 16 epochs of 57 batches at 64 px 0.93 (552 s, shared AVX2 EPYC).
            demo["epochs"] = 16
        return cls(**{**demo, **overrides})

    @property
    def uses_builtin_dataset(self) -> bool:
        """Whether the run trains on the built-in synthetic dataset."""
        return self.data_dir is None or synthetic.read_manifest(self.data_dir) is not None


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        model: the trained model, with the weights of its best validation epoch.
        history: the per-epoch logs of this process's `fit` (resumed epochs only).
        val_accuracy: video top-1 accuracy on the validation split (`eval_clips`
            centred-crop clips per video; one clip: the centred clip); `None`
            for a multi-label run.
        reversed_val_accuracy: the same with every clip played backwards (far
            below `val_accuracy` when the model reads temporal order), or
            `None` without `reversed_evaluation`.
        seconds: wall time of training, evaluation and export (without making the data).
        class_names: the class of each output.
        preprocessing: the input convention the model was trained with (also
            recorded in the model, so its export and `.keras` file keep it).
        is_chief: whether this process writes the run's shared outputs.
        export_path: the SavedModel version folder, if the run exported one.
        val_map: a multi-label run's video mAP on the validation split
            (`kvid.metrics.mean_average_precision`), else `None`.
        reversed_val_map: the same on the clips played backwards.
    """

    model: keras.Model
    history: dict
    val_accuracy: float | None
    reversed_val_accuracy: float | None
    seconds: float
    class_names: list[str]
    preprocessing: Preprocessing
    is_chief: bool
    export_path: str | None = None
    val_map: float | None = None
    reversed_val_map: float | None = None

    def summary(self) -> str:
        """The one-line result: `val_accuracy=0.973 reversed_val_accuracy=0.121 seconds=412`.

        A multi-label run's reads `val_mAP=0.950 reversed_val_mAP=0.310 seconds=380`.
        """
        name, score, reverse = "val_accuracy", self.val_accuracy, self.reversed_val_accuracy
        if self.val_map is not None:
            name, score, reverse = "val_mAP", self.val_map, self.reversed_val_map
        reversed_text = "" if reverse is None else f"reversed_{name}={reverse:.3f} "
        return f"{name}={score:.3f} {reversed_text}seconds={self.seconds:.0f}"


def freeze_batch_norm_except_first(model: keras.Model) -> int:
    """Freezes every BatchNormalization layer but the first (for long clips).

    Frozen layers use their moving statistics and keep their scale and shift,
    as recommended when fine-tuning on long clips with small batches.

    Returns:
        How many layers were frozen.
    """
    norms = [layer for layer in flat_layers(model) if _is_batch_norm(layer)]
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
    multi_label: bool = False,
) -> str:
    """Writes (once) the built-in synthetic dataset and returns its root.

    The folder name records the arguments, so different sizes coexist. Its
    classes come in pairs that are each other's mirror image or reverse
    (`move_left`/`move_right`, `move_up`/`move_down`, ...), so training on it
    uses no flips: a horizontal flip turns `move_left` into `move_right`.
    With `multi_label`, the two-polygon variant
    (`kvid.data.synthetic.write_multilabel_dataset`, with `train.csv` and
    `validation.csv`) with as many videos (`*_per_class` times the 8 classes),
    two classes each: a class is in about a quarter of them.
    """
    name = (
        f"kvid_synthetic{'_multilabel' if multi_label else ''}_v{synthetic.VERSION}_"
        f"{num_frames}f_{size}px_{train_per_class}-{validation_per_class}_s{seed}"
    )
    root = os.path.join(directory, name)
    if multi_label:
        # As many videos as the single-label dataset: the demo's single-label run learns it
        # in about 560 steps, and half as many videos planned only 504 (val mAP 0.5 by epoch 4).
        classes = len(synthetic.CLASS_NAMES)
        synthetic.write_multilabel_dataset(
            root,
            train_videos=train_per_class * classes,
            validation_videos=validation_per_class * classes,
            num_frames=num_frames,
            size=size,
            seed=seed,
        )
        return root
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


def resolve_data_dir(config: TrainConfig) -> str:
    """`config.data_dir`, or the built-in dataset written (once) at the run's clip size."""
    if config.data_dir is not None:
        return config.data_dir
    return builtin_dataset(
        num_frames=config.num_frames,
        size=config.size or 64,
        train_per_class=config.train_per_class,
        validation_per_class=config.validation_per_class,
        seed=config.seed,
        multi_label=config.multi_label,
    )


def clip_preprocessing(config: TrainConfig) -> Preprocessing:
    """The run's one transform: the model's convention at the run's clip length and size.

    The built-in dataset's frames are already `size` pixels: no resize, the
    whole frame is the crop. Real videos use the model's registered resize and
    crop, scaled by `size / crop` when `size` is given.
    """
    convention = dataclasses.replace(get_preprocessing(config.model), num_frames=config.num_frames)
    if config.uses_builtin_dataset:
        size = config.size or 64
        return dataclasses.replace(convention, crop_size=size, resize=size)
    if config.size is None:
        return convention
    return preprocessing_lib.rescaled(convention, config.size)


def training_augmentation(config: TrainConfig):
    """The training clips' `augment`: no flips on the built-in dataset."""
    # The built-in dataset's classes are each other's mirror image: no flips there.
    if config.uses_builtin_dataset and config.augment is True:
        return False
    return config.augment


def training_data(
    config: TrainConfig,
    data_dir: str,
    preprocessing: Preprocessing,
    *,
    holdout_split: float | None = None,
):
    """The run's training clips of `data_dir/train`, and its steps per epoch.

    The clips are random (`frame_step`, `sampling`, `clips_per_video`, random
    resized crops, augmentation), batched, with one-hot labels; with
    `config.steps_per_epoch` they repeat and an epoch is that many batches.

    Args:
        config: the run's settings.
        data_dir: the dataset root.
        preprocessing: the run's transform (`clip_preprocessing`).
        holdout_split: hold out this fraction of the training videos (seeded
            by `config.seed`) as centred clips, centre-cropped, batched: the
            planner's transitions score on it instead of the validation split.

    Returns:
        `(train, holdout, steps_per_epoch)`; `holdout` is `None` without `holdout_split`.
    """
    clip = data_lib.ClipConfig(
        num_frames=config.num_frames,
        frame_step=config.frame_step,
        sampling=config.sampling,
        augment=training_augmentation(config),
        scale_range=config.scale_range,
        model=preprocessing,
    )
    options = dict(
        batch_size=config.batch_size,
        seed=config.seed,
        clips_per_video=config.clips_per_video,
        clip=clip,
    )
    if config.multi_label:
        if holdout_split is not None:
            raise ValueError("A multi-label run has no held-out split of its training videos.")
        datasets = data_lib.video_dataset_from_annotations(
            annotation_files(data_dir)["train"],
            label_mode="multi_hot",
            clip_labels=config.clip_labels,
            **options,
        )
    else:
        split = {}
        if holdout_split is not None:
            split = {"validation_split": holdout_split, "subset": "both"}
        datasets = data_lib.video_dataset_from_directory(
            os.path.join(data_dir, "train"), label_mode="categorical", **options, **split
        )
    train, holdout = datasets if holdout_split is not None else (datasets, None)
    num_clips = len(train.file_paths) * config.clips_per_video
    if num_clips < config.batch_size:
        raise ValueError(
            f"The train split of {data_dir!r} has {len(train.file_paths)} videos, fewer than one "
            f"batch. Received: batch_size={config.batch_size}"
        )
    train, steps_per_epoch = limit_steps(train, math.ceil(num_clips / config.batch_size), config)
    return train, holdout, steps_per_epoch


def annotation_files(data_dir: str) -> dict[str, str]:
    """A multi-label dataset's annotation files: `data_dir/train.csv`, `data_dir/validation.csv`.

    Raises:
        ValueError: if one is missing.
    """
    files = {split: os.path.join(data_dir, name) for split, name in synthetic.ANNOTATIONS.items()}
    missing = [path for path in files.values() if not os.path.exists(path)]
    if missing:
        raise ValueError(
            "A multi-label run reads the annotation files train.csv and validation.csv in "
            f"`data_dir` (docs/multi_label.md). Missing: {missing}"
        )
    return files


def limit_steps(train: tf.data.Dataset, steps_per_epoch: int, config: TrainConfig):
    """`(train, steps_per_epoch)` as `config.steps_per_epoch` has them (repeated if set)."""
    if config.steps_per_epoch is None:
        return train, steps_per_epoch
    repeated = train.repeat()
    repeated.class_names, repeated.file_paths = train.class_names, train.file_paths
    return repeated, config.steps_per_epoch


def make_datasets(config: TrainConfig, data_dir: str, preprocessing: Preprocessing):
    """Training clips, validation clips and the validation views of a run.

    Returns:
        `(train, validation, evaluation, class_names, steps_per_epoch)`: `train`
        and `steps_per_epoch` those of `training_data`; `validation` batches of
        the centred clip of every validation video, centre-cropped (the exported
        model's input); `evaluation` the unbatched `video_evaluation_dataset`
        of `eval_clips` clips per video, for `evaluate_run`.
    """
    train, _, steps_per_epoch = training_data(config, data_dir, preprocessing)
    class_names = train.class_names

    if config.multi_label:
        source = annotation_files(data_dir)["validation"]
    else:
        source = os.path.join(data_dir, "validation")

    def evaluation_views(num_clips):
        return data_lib.video_evaluation_dataset(
            source,
            num_clips=num_clips,
            class_names=class_names,
            multi_label=config.multi_label,
            num_frames=config.num_frames,
            frame_step=config.frame_step,
            sampling=config.sampling,
            model=preprocessing,
        )

    def target(label):
        return label if config.multi_label else tf.one_hot(label, len(class_names))

    validation = evaluation_views(1).map(lambda views, label, video_id: (views[0], target(label)))
    validation = validation.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)
    return train, validation, evaluation_views(config.eval_clips), class_names, steps_per_epoch


def classifier_activation(config: TrainConfig) -> str:
    """`"sigmoid"` (independent class probabilities) for a multi-label run, else `"softmax"`."""
    return "sigmoid" if config.multi_label else "softmax"


def loss_and_metrics(config: TrainConfig, classes: int):
    """The run's loss and training metrics, and the logged metric its best epoch is chosen by.

    Single-label: categorical cross-entropy, top-1 (`accuracy`) and top-5.
    Multi-label: binary cross-entropy (both with `label_smoothing`) and the
    area under the precision-recall curve of every (clip, class) pair ranked
    together (`pr_auc`, which rises with the mAP the run is scored by at the end).
    """
    smoothing = config.label_smoothing
    if config.multi_label:
        return (
            keras.losses.BinaryCrossentropy(label_smoothing=smoothing),
            # Micro-averaged over (clip, class) pairs: Keras' per-class variant
            # (`multi_label=True`) vectorizes over the classes with bool ops that make oneDNN
            # log an error-level line on AVX2 CPUs (measured at 8 and 157 classes).
            [keras.metrics.AUC(curve="PR", name="pr_auc")],
            "val_pr_auc",
        )
    return (
        keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        [
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(min(5, classes), name="top5"),
        ],
        "val_accuracy",
    )


def build_model(config: TrainConfig, num_classes: int, preprocessing: Preprocessing) -> keras.Model:
    """The registry model at the run's clip size, recording `preprocessing` for its export."""
    width = {} if config.alpha is None else {"alpha": config.alpha}
    height, width_px = preprocessing.crop_shape
    activation = classifier_activation(config)
    net = get_model(
        config.model,
        weights=None,
        classes=num_classes,
        input_shape=(config.num_frames, height, width_px, 3),
        # Under mixed precision the softmax (sigmoid) runs in float32 (Keras' advice).
        classifier_activation=None if config.mixed_precision else activation,
        **{**width, **config.model_kwargs},
    )
    if config.mixed_precision:
        outputs = keras.layers.Activation(activation, dtype="float32", name="probabilities")(
            net.outputs[0]
        )
        net = keras.Model(net.input, outputs, name=net.name)
    set_model_preprocessing(net, preprocessing)
    if config.freeze_batch_norm:
        freeze_batch_norm_except_first(net)
    return net


def compile_model(net: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    """Optimizer with its schedule, loss and metrics (`loss_and_metrics`)."""
    rate = schedules.make_schedule(
        config.schedule,
        config.learning_rate,
        steps_per_epoch=steps_per_epoch,
        epochs=config.epochs,
        warmup_epochs=config.warmup_epochs,
        milestones=config.milestones,
        gamma=config.gamma,
    )
    classes = net.outputs[0].shape[-1]
    jit_compile = config.jit_compile
    if jit_compile is None:
        jit_compile = bool(tf.config.list_physical_devices("GPU"))  # XLA's CPU Conv3D is slower
    loss, run_metrics, _ = loss_and_metrics(config, classes)
    net.compile(
        optimizer=make_optimizer(
            config.optimizer,
            rate,
            weight_decay=config.weight_decay,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
        ),
        loss=loss,
        metrics=run_metrics,
        jit_compile=jit_compile,
    )
    # Create the optimizer's slots now: a tf.function whose first call creates variables
    # is traced twice, and tracing S3D-G's step is half a minute on a 2-core machine.
    net.optimizer.build(net.trainable_variables)


def make_model(
    config: TrainConfig,
    num_classes: int,
    preprocessing: Preprocessing,
    distribution: tf.distribute.Strategy,
    *,
    steps_per_epoch: int | None = None,
    weights: str | None = None,
) -> keras.Model:
    """`build_model` under the run's mixed-precision policy, in `distribution`'s scope.

    The layers keep `config.mixed_precision`'s policy; the global policy is
    restored afterwards, whatever happens.

    Args:
        config: the run's settings.
        num_classes: outputs of the classifier.
        preprocessing: the run's transform, recorded in the model.
        distribution: the strategy whose scope creates the variables.
        steps_per_epoch: also `compile_model` for epochs of this many steps.
        weights: a weights file to load before compiling (e.g. a planner's source state).
    """
    previous_policy = keras.mixed_precision.global_policy()
    try:
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy(config.mixed_precision)
        with distribution.scope():
            net = build_model(config, num_classes, preprocessing)
            if weights is not None:
                net.load_weights(weights)
            if steps_per_epoch is not None:
                compile_model(net, config, steps_per_epoch)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return net


BUDGET_FILE = "budget.json"
# What a run does after planning that does not scale with its steps, in units of the
# first (tracing) step: building the model again, tracing its training and validation
# steps, tracing the evaluation, exporting (on the AVX2 EPYC: about 100 s, 4x).
NON_SCALING_STEPS = 4


def plan_to_budget(
    config: TrainConfig,
    num_classes: int,
    preprocessing: Preprocessing,
    train_data: tf.data.Dataset,
    steps_per_epoch: int,
    validation_videos: int,
    started: float,
    non_scaling_steps: float = NON_SCALING_STEPS,
) -> budget_lib.WorkPlan:
    """Times the run's model and input pipeline and plans its work to fit `time_budget`.

    The budget is the whole run's, from `started` (a `time.monotonic()`): what
    was spent before planning (writing the built-in dataset, tracing) and an
    estimate of the work after it that does not scale (`non_scaling_steps`
    first steps) are reserved. The plan is saved in `work_dir`, so a resumed run keeps
    it rather than re-timing a step on a machine that may be busier or quieter
    than before.
    """
    path = os.path.join(config.work_dir, BUDGET_FILE)
    if os.path.exists(path):
        with open(path) as f:
            return budget_lib.WorkPlan(**json.load(f))
    net = build_model(config, num_classes, preprocessing)
    compile_model(net, config, steps_per_epoch)
    height, width = preprocessing.crop_shape
    shape = (config.batch_size, config.num_frames, height, width, 3)
    clips = np.random.default_rng(config.seed).random(shape, "float32")
    labels = np.eye(num_classes, dtype="float32")[np.arange(config.batch_size) % num_classes]
    with remapper_off():  # as in `fit`, so the step timed is the step trained
        first_step = time.monotonic()
        net.train_on_batch(clips, labels)  # traces the step
        first_step = time.monotonic() - first_step
        seconds = budget_lib.measure_step_seconds(
            lambda: net.train_on_batch(clips, labels), warmup=1
        )
    input_seconds = budget_lib.measure_input_seconds(train_data)
    validation_steps = math.ceil(validation_videos / config.batch_size)
    passes = config.eval_clips * (2 if config.reversed_evaluation else 1)
    chosen = budget_lib.plan(
        seconds,
        budget=config.time_budget,
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=validation_steps,
        evaluation_steps=validation_steps * passes,
        input_seconds=input_seconds,
        reserved_seconds=time.monotonic() - started + non_scaling_steps * first_step,
        size=height,
        sizes=sorted({height, 2 * round(height * 3 / 8), 2 * round(height / 4)}, reverse=True),
    )
    os.makedirs(config.work_dir, exist_ok=True)
    with atomic.atomic_file(path) as f:
        json.dump(dataclasses.asdict(chosen), f)
    return chosen


def budgeted(config: TrainConfig, chosen: budget_lib.WorkPlan) -> TrainConfig:
    """The config that trains a budget plan: its clip side and steps, the budget as a guard.

    The plan decided the work, so `time_budget` becomes a guard against the
    plan overrunning by half (1.5x the larger of the budget and its estimate).
    """
    fewer = chosen.steps_per_epoch < chosen.full_steps_per_epoch
    return dataclasses.replace(
        config,
        size=chosen.size,
        steps_per_epoch=chosen.steps_per_epoch if fewer else None,
        time_budget=1.5 * max(config.time_budget, chosen.estimated_seconds),
    )


def make_callbacks(
    config: TrainConfig, distribution: tf.distribute.Strategy, extra=()
) -> list[keras.callbacks.Callback]:
    """Every callback of a run, in order: the defaults, the time budget, then `extra`."""
    run_callbacks = callbacks_lib.default_callbacks(
        config.work_dir,
        strategy=distribution,
        resume=config.resume,
        monitor=loss_and_metrics(config, 1)[2],
    )
    if config.time_budget:
        run_callbacks.append(callbacks_lib.TimeBudget(config.time_budget))
    return [*run_callbacks, *extra]


@contextlib.contextmanager
def remapper_off():
    """Grappler's remapper off while training, then as it was.

    On a training step of a torch-padded conv (`ZeroPadding3D` then `Conv3D`)
    the remapper fuses the pad into the conv, finds the gradient still reading
    the pad, logs an error-level `remapper failed` and leaves the graph as it
    was: switched off, the graph is the same, and the console has no error line
    to ignore (the step time did not change, measured on s3dg and r3d_18).
    """
    previous = tf.config.optimizer.get_experimental_options().get("remapping")
    tf.config.optimizer.set_experimental_options({"remapping": False})
    try:
        yield
    finally:
        restored = True if previous is None else previous
        tf.config.optimizer.set_experimental_options({"remapping": restored})


def fit(
    net,
    train,
    validation,
    config: TrainConfig,
    run_callbacks,
    distribution=None,
    *,
    restore_best: bool = True,
) -> dict:
    """`Model.fit` for `config.epochs` of `config.steps_per_epoch` (unset: a pass) each.

    The `Backup` among `run_callbacks` is restored into `net` first, and `fit`
    trains only the epochs it does not hold. Then, with `restore_best`, the
    weights of the best validation epoch back into `net`.
    """
    initial_epoch = callbacks_lib.restore_backup(run_callbacks, net)
    with remapper_off():
        history = net.fit(
            train,
            validation_data=validation,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=config.steps_per_epoch,
            callbacks=run_callbacks,
            verbose=config.verbose,
            shuffle=False,  # the datasets shuffle themselves (Keras warns otherwise)
        )
    best = os.path.join(
        callbacks_lib.worker_dir(config.work_dir, distribution), callbacks_lib.BEST_MODEL
    )
    if restore_best and os.path.exists(best):
        net.load_weights(best)
    return history.history


def evaluate_run(net, evaluation_views, config: TrainConfig) -> tuple[float, float | None]:
    """Video top-1 (multi-label: mAP) on the validation views, and played backwards if asked."""

    def video_score(reverse):
        batches = evaluation.view_batches(evaluation_views, config.batch_size, reverse=reverse)
        result = evaluation.evaluate(
            net, batches, multi_label=config.multi_label, aggregation=config.view_aggregation
        )
        return result.mean_ap if config.multi_label else result.video_top1

    score = video_score(False)
    return score, video_score(True) if config.reversed_evaluation else None


def export_run(net, config: TrainConfig, class_names, preprocessing) -> str | None:
    """Exports the SavedModel to `export_dir/<model>/<next version>`, if `export_dir` is set."""
    if not config.export_dir:
        return None
    return export_lib.export_saved_model(
        net,
        os.path.join(config.export_dir, config.model),
        class_names=class_names,
        preprocessing=preprocessing,
    )


def train(
    config: TrainConfig | str | None = None,
    *,
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
    **overrides,
) -> TrainResult:
    """Trains a registered model on a class-per-folder video dataset.

    A run killed at any point and restarted with the same `work_dir` resumes
    from its last finished epoch. The best epoch by validation accuracy is
    kept. `data_dir=None` trains on the built-in synthetic dataset (without
    flips, which would swap its classes); use `TrainConfig.demo()` for the
    quick run's settings.

    Args:
        config: the run's settings (or just the model's registry key); defaults
            to `TrainConfig()`.
        callbacks: more callbacks, after the default ones.
        **overrides: fields of `TrainConfig` replacing those of `config`.

    Returns:
        A `TrainResult`.

    Example:
        A 1/16-width R3D-18 on the built-in dataset at its smallest (4-frame
        32-pixel videos, 2 of each class to train on), for one epoch:

        >>> data_dir = kvid.training.builtin_dataset(
        ...     num_frames=4, size=32, train_per_class=2, validation_per_class=1, directory="data")
        >>> result = kvid.training.train(model="r3d_18", alpha=1 / 16, data_dir=data_dir,
        ...                              num_frames=4, size=32, batch_size=4, epochs=1, verbose=0)
        >>> result.class_names
        ['appear', 'disappear', 'grow', 'move_down', 'move_left', 'move_right', 'move_up', 'shrink']
    """
    if isinstance(config, str):  # train("r2plus1d_18", data_dir=...)
        config, overrides = None, {"model": config, **overrides}
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    start = time.monotonic()
    data_dir = resolve_data_dir(config)
    distribution = strategy_lib.get_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    preprocessing = clip_preprocessing(config)
    train_data, validation, views, class_names, steps = make_datasets(
        config, data_dir, preprocessing
    )
    if config.fit_budget and config.time_budget:
        chosen = plan_to_budget(
            config, len(class_names), preprocessing, train_data, steps, len(views.file_paths), start
        )
        print(chosen.describe(), flush=True)
        config = budgeted(config, chosen)
        if chosen.size != preprocessing.crop_size:
            preprocessing = clip_preprocessing(config)
            train_data, validation, views, class_names, steps = make_datasets(
                config, data_dir, preprocessing
            )
        else:
            train_data, steps = limit_steps(train_data, steps, config)
    net = make_model(config, len(class_names), preprocessing, distribution, steps_per_epoch=steps)
    run_callbacks = make_callbacks(config, distribution, callbacks)
    history = fit(net, train_data, validation, config, run_callbacks, distribution)
    is_chief = strategy_lib.is_chief(distribution)
    write_class_names(callbacks_lib.worker_dir(config.work_dir, distribution), class_names)
    score, reversed_score = evaluate_run(net, views, config)
    export_path = export_run(net, config, class_names, preprocessing) if is_chief else None
    scores = dict(val_accuracy=score, reversed_val_accuracy=reversed_score)
    if config.multi_label:
        scores = dict(
            val_accuracy=None,
            reversed_val_accuracy=None,
            val_map=score,
            reversed_val_map=reversed_score,
        )
    return TrainResult(
        model=net,
        history=history,
        **scores,
        seconds=time.monotonic() - start,
        class_names=list(class_names),
        preprocessing=preprocessing,
        is_chief=is_chief,
        export_path=export_path,
    )
