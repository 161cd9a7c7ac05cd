"""Flags more than one app defines, defined once so they mean the same in each."""

from absl import flags


def define_model_name() -> None:
    """`--model_name`: the convention override of `kvid.models.model_convention`."""
    flags.DEFINE_string(
        "model_name",
        None,
        "Registry key (e.g. r3d_18) whose input convention to use instead of the one the model "
        "records; either is fitted to the model's input size (docs/architecture.md).",
    )
