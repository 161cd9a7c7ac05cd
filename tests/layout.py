"""kvid's layers, bottom to top, and the imports between them, read from the source.

`tests/test_layout.py` checks that no unit imports upward or in a circle;
`tests/generated_docs.py` writes the table of `docs/architecture.md` from here.
"""

from __future__ import annotations

import ast
import collections
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kvid"

# Bottom to top: each unit may import only the units before it.
LAYERS = (
    ("kvid._onednn", "turns oneDNN on before TensorFlow loads (x86)"),
    ("kvid.preprocessing", "`Preprocessing` and the one clip transform: pure TF ops"),
    ("kvid.conventions", "every input convention kvid knows, once"),
    ("kvid.io", "video decoding and streaming, writing, class names, crash-safe files"),
    ("kvid.metrics", "multi-label average precision and the Charades mAP: numpy only"),
    ("kvid.layers", "serializable Keras layers, including the convention a model records"),
    ("kvid.weights", "published sets, downloads verified by hash, checkpoint readers"),
    ("kvid.models", "the registry, the factories, the one convention resolver"),
    ("kvid.data", "`tf.data` pipelines: folders, annotations, TFRecords, augmentation"),
    ("kvid.evaluation", "multi-clip, multi-crop scoring"),
    ("kvid.export", "TF Serving SavedModels with preprocessing in the graph"),
    ("kvid.schedules", "learning-rate schedules, registered with Keras"),
    ("kvid.training", "`train`: strategies, callbacks, budgets"),
    ("kvid.plots", "PNG figures of runs, timelines and plans"),
    ("kvid.inference", "sliding-window prediction over whole videos"),
    ("kvid.live", "live sources classified as they arrive, with bounded latency"),
    ("kvid.planning", "optimization planning over training states"),
    ("kvid.beam", "Apache Beam pipelines: preparation, corpus prediction, evaluation (extra)"),
)
UNITS = tuple(name for name, _ in LAYERS)


def _modules() -> dict[str, pathlib.Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def unit_of(module: str) -> str:
    """The layer a module belongs to (the package itself for `kvid/__init__.py`)."""
    return ".".join(module.split(".")[:2])


def imported_modules(module: str, path: pathlib.Path, modules) -> set[str]:
    """The kvid modules `module` imports anywhere in its file (deferred imports included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {name for name in found if name == "kvid" or name.startswith("kvid.")}


def unit_imports() -> dict[str, set[str]]:
    """`{unit: units it imports}` for every unit but the package's `__init__`."""
    modules = _modules()
    graph = collections.defaultdict(set)
    for module, path in modules.items():
        unit = unit_of(module)
        if unit == "kvid":
            continue
        graph[unit]  # every unit appears, even one importing nothing
        for target in imported_modules(module, path, modules):
            if unit_of(target) != unit:
                graph[unit].add(unit_of(target))
    return dict(graph)


def table() -> str:
    """The generated Markdown table: each layer, what it is, what it imports."""
    graph = unit_imports()
    rows = ["| layer (bottom to top) | what it holds | imports |", "| --- | --- | --- |"]
    for name, summary in LAYERS:
        imports = ", ".join(f"`{u}`" for u in UNITS if u in graph.get(name, ())) or "-"
        rows.append(f"| `{name}` | {summary} | {imports} |")
    return "\n".join(rows)
