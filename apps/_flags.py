"""The apps' flags, made one way: config dataclasses become flags, flags become configs.

Every field of a config dataclass (`kvid.training.TrainConfig`,
`kvid.planning.PlanConfig`) gets one absl flag of its type, with the help text,
choices and element type its `metadata` gives; `config_from_flags` reads them
back with one rule for every app.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from absl import flags


def define_model_name() -> None:
    """`--model_name`: the convention override of `kvid.models.model_convention`."""
    flags.DEFINE_string(
        "model_name",
        None,
        "Registry key (e.g. r3d_18) whose input convention to use instead of the one the model "
        "records; either is fitted to the model's input size (docs/architecture.md).",
    )


# The sliding window of `kvid.inference.predict_video` and of every path built on it.
SLIDING_WINDOW = ("model_name", "num_frames", "size", "stride", "stride_seconds", "fps")


def define_sliding_window(batch_size_help: str = "Clips per forward pass.") -> None:
    """`--model_name` and the clips slid over a video: `SLIDING_WINDOW` and `--batch_size`."""
    define_model_name()
    flags.DEFINE_integer("num_frames", None, "Frames per clip; unset: the model's input length.")
    flags.DEFINE_integer("size", None, "Crop side; unset: the model's input size.")
    flags.DEFINE_integer("stride", None, "Frames between clips; unset: half a clip.")
    flags.DEFINE_float("stride_seconds", None, "Seconds between clips, instead of --stride.")
    flags.DEFINE_float("fps", None, "Resample to this frame rate; unset: keep the video's frames.")
    flags.DEFINE_integer("batch_size", 8, batch_size_help)


def sliding_window(flag_values=flags.FLAGS) -> dict:
    """The keyword arguments `define_sliding_window`'s flags give the prediction functions."""
    return {name: flag_values[name].value for name in (*SLIDING_WINDOW, "batch_size")}


def _flagged(config_class):
    return [f for f in dataclasses.fields(config_class) if f.metadata.get("flag", True)]


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()


def define_config_flags(
    config_class, flag_values=flags.FLAGS, *, prefix: str = "", defaults: Mapping | None = None
) -> None:
    """Defines one flag per field of `config_class`, named `prefix + field name`.

    Args:
        config_class: a dataclass; a field's `metadata` may give `help`,
            `kind` (the value's type, for a `None` default or a tuple's
            elements), `enum` (the choices) and `flag=False` (no flag).
        flag_values: where to define them, e.g. `flags.FLAGS`.
        prefix: prepended to every flag name (`"plan_"`).
        defaults: the app's own defaults for some fields.
    """
    defaults = dict(defaults or {})
    for field in _flagged(config_class):
        meta = field.metadata
        name = prefix + field.name
        default = defaults.get(field.name, _default(field))
        help_text = meta.get("help") or f"{field.name.replace('_', ' ')}."
        kind = meta.get("kind") or type(default)
        if meta.get("enum") is not None:
            flags.DEFINE_enum(name, default, list(meta["enum"]), help_text, flag_values=flag_values)
        elif isinstance(default, tuple):
            values = [str(v) for v in default]
            flags.DEFINE_list(name, values, help_text, flag_values=flag_values)
        elif kind is bool:
            flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def config_from_flags(config_class, flag_values=flags.FLAGS, *, prefix: str = "", base=None):
    """The config of parsed flags made by `define_config_flags`.

    A flag given on the command line, or one whose (app) default differs from
    the field's, sets its field; every other field keeps `base`'s value
    (default: `config_class()`'s).
    """
    overrides = {}
    for field in _flagged(config_class):
        flag = flag_values[prefix + field.name]
        default = _default(field)
        if isinstance(default, tuple):
            element = field.metadata.get("kind") or (type(default[0]) if default else str)
            value = tuple(element(v) for v in flag.value)
        else:
            value = flag.value
        if flag.present or value != default:
            overrides[field.name] = value
    return dataclasses.replace(base or config_class(), **overrides)
