"""The docs' tables that come from code, written from it; `tests/test_generated_docs.py`
fails when one is stale. `python -m tests.generated_docs` rewrites them all.

Each table lives between `<!-- begin generated NAME -->` and `<!-- end generated NAME -->`.
"""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATASETS = (
    "video_dataset_from_directory",
    "video_dataset_from_annotations",
    "video_evaluation_dataset",
    "video_dataset_from_tfrecords",
    "tfrecord_evaluation_dataset",
)


def _signature(function) -> str:
    """`(a, b=1, *, c=None, **d)`: names and defaults, without annotations."""
    parts, star = [], False
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        if parameter.kind is parameter.VAR_KEYWORD:
            parts.append(f"**{parameter.name}")
        elif parameter.default is parameter.empty:
            parts.append(parameter.name)
        else:
            parts.append(f"{parameter.name}={parameter.default!r}".replace("'", '"'))
    return f"({', '.join(parts)})"


def dataset_table() -> str:
    """Every dataset entry point: its signature and what its docstring says it gives."""
    import kvid

    rows = ["| function | what it gives |", "| --- | --- |"]
    for name in DATASETS:
        function = getattr(kvid.data, name)
        summary = inspect.getdoc(function).splitlines()[0]
        rows.append(f"| `{name}{_signature(function)}` | {summary} |")
    return "\n".join(rows)


def clip_options_table() -> str:
    """`ClipConfig`'s fields (the clip options every dataset takes), from its docstring."""
    import kvid

    config = kvid.data.ClipConfig
    doc = inspect.getdoc(config).split("Attributes:", 1)[1]
    described = dict(re.findall(r"^    (\w+): (.*(?:\n {8}.*)*)", doc, flags=re.M))
    rows = ["| option | default | meaning |", "| --- | --- | --- |"]
    for field in dataclasses.fields(config):
        if not field.init:
            continue
        meaning = " ".join(described[field.name].split())
        rows.append(f"| `{field.name}` | `{field.default!r}` | {meaning} |")
    return "\n".join(rows)


def _layers() -> str:
    from tests import layout

    return layout.table()


def _benchmark(name, backend=None):
    from benchmarks import tables

    return lambda: tables.recorded_table(name, backend)


def _long_video(name):
    from benchmarks import tables

    return lambda: tables.recorded_long_video_table(name)


def _live():
    from benchmarks import tables

    return tables.recorded_live_table()


def _pipeline():
    from benchmarks import tables

    return tables.recorded_pipeline_table()


def _beam():
    from benchmarks import tables

    return tables.recorded_beam_table()


TABLES = {
    ("docs/beam.md", "beam benchmark"): _beam,
    ("docs/data.md", "pipeline benchmark"): _pipeline,
    ("docs/benchmarks.md", "long video"): _long_video("long_video"),
    ("docs/live.md", "live benchmark"): _live,
    ("docs/benchmarks.md", "long video quiet"): _long_video("long_video_quiet"),
    ("docs/benchmarks.md", "models benchmark"): _benchmark("models"),
    ("docs/benchmarks.md", "models benchmark avx2"): _benchmark("models_avx2"),
    ("docs/backends.md", "backend benchmark"): _benchmark("models_jax", "jax"),
    ("docs/architecture.md", "layers"): _layers,
    ("docs/data.md", "datasets"): dataset_table,
    ("docs/data.md", "clip options"): clip_options_table,
}


def generated(text: str, name: str, table: str) -> str:
    """`text` with its generated section `name` replaced by `table`."""
    begin, end = f"<!-- begin generated {name} -->", f"<!-- end generated {name} -->"
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"


def current(path: str) -> str:
    """The text `path` should have: its generated sections rewritten from the code."""
    text = (ROOT / path).read_text()
    for (page, name), make in TABLES.items():
        if page == path:
            text = generated(text, name, make())
    return text


if __name__ == "__main__":
    for page in sorted({page for page, _ in TABLES}):
        (ROOT / page).write_text(current(page))
        print("wrote", page)
