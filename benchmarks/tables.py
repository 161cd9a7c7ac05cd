"""Markdown tables of the recorded benchmark results (`benchmarks/results/*.json`).

`benchmarks/models.py` prints them after a run; `tests/generated_docs.py` writes them into
`docs/benchmarks.md` and `docs/backends.md` from the recorded JSON, with the machine each
figure was measured on.
"""

from __future__ import annotations

import json
import pathlib

RESULTS = pathlib.Path(__file__).parent / "results"


def markdown(results):
    """The Markdown table of a run's results (kvid against torchvision)."""
    lines = [
        "| model | clip | batch | GFLOPs | kvid forward s | torchvision s | ratio | "
        "kvid train step s | torchvision s | ratio | % of matmul peak |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for row in result["runs"]:

            def cell(name, digits=3, row=row):
                return f"{row[name]:.{digits}f}" if name in row else "-"

            lines.append(
                f"| {result['model']} | {'x'.join(map(str, result['clip'][:3]))} | {row['batch']} "
                f"| {row['gflops']:.1f} | {cell('kvid_forward_s')} | {cell('torch_forward_s')} "
                f"| {cell('forward_ratio', 2)} | {cell('kvid_train_step_s')} "
                f"| {cell('torch_train_step_s')} | {cell('train_ratio', 2)} "
                f"| {100 * row['kvid_fraction_of_peak']:.0f} |"
            )
    return "\n".join(lines)


def backend_markdown(results, backend):
    """The Markdown table of the forward pass on TensorFlow and on `backend`."""
    lines = [
        f"| model | clip | batch | TensorFlow forward s | {backend} forward s | {backend} / TF |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for row in result["runs"]:
            lines.append(
                f"| {result['model']} | {'x'.join(map(str, result['clip'][:3]))} | {row['batch']} "
                f"| {row['kvid_forward_s']:.3f} | {row[f'{backend}_forward_s']:.3f} "
                f"| {row[f'{backend}_forward_ratio']:.2f} |"
            )
    return "\n".join(lines)


def machine_line(report) -> str:
    """Where and how a recorded run was measured: CPU, cores, versions, command."""
    machine = report["machine"]
    extensions = ", ".join(machine.get("extensions") or []) or "extensions not recorded"
    versions = ", ".join(f"{name} {v}" for name, v in report["versions"].items() if v)
    return (
        f"Measured {report['date']} on {machine['cores']} cores "
        f"({machine.get('cpu', 'CPU not recorded')}: {extensions}), "
        f"{versions}: `{report['command']}`"
    )


def recorded_table(name: str, backend: str | None = None) -> str:
    """The table of `benchmarks/results/<name>.json`, below the line saying where it ran."""
    report = json.loads((RESULTS / f"{name}.json").read_text())
    results = report["results"]
    table = backend_markdown(results, backend) if backend else markdown(results)
    return f"{machine_line(report)}\n\n{table}"
