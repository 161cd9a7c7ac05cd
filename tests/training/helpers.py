"""Shared by the training tests: a tiny model and a tiny dataset."""

from kvid.models import get_spec
from kvid.training import train_lib

TINY = dict(
    model="r3d_18",
    model_kwargs=get_spec("r3d_18").test_kwargs,
    num_frames=4,
    size=32,
    batch_size=4,
    verbose=0,
)
TINY_DATA = dict(train_per_class=2, validation_per_class=1)


def tiny_dataset(directory):
    """The built-in dataset at its smallest: 16 training and 8 validation videos."""
    return train_lib.builtin_dataset(
        num_frames=TINY["num_frames"], size=TINY["size"], directory=str(directory), **TINY_DATA
    )
