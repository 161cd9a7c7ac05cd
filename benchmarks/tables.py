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


def long_video_markdown(results) -> str:
    """The Markdown table of `benchmarks/long_video.py`'s runs."""
    lines = [
        "| video | run | model | stride | wall s | video frames/s | per CPU-s | peak RSS | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        stride = f"{r['stride_seconds']} s" if r["stride_seconds"] else "half a clip"
        lines.append(
            f"| {r['minutes']} min {r['resolution']} | {r['mode']} | {r['model'] or '-'} | "
            f"{stride if r['mode'] != 'decode' else '-'} | {r['seconds']} | "
            f"{r.get('video_frames_per_s') or '-'} | {r.get('video_frames_per_cpu_s') or '-'} | "
            f"{r['peak_rss_mb']} MB | {r.get('note') or ''} |"
        )
    return "\n".join(lines)


def recorded_long_video_table(name: str) -> str:
    """The table of `benchmarks/results/<name>.json`, below the line saying where it ran."""
    report = json.loads((RESULTS / f"{name}.json").read_text())
    where = f"{report['cores']} cores ({report['cpu']})"
    note = f"; {report['machine_note']}" if report.get("machine_note") else ""
    command = f": `{report['command']}`" if report.get("command") else ""
    return f"Measured on {where}{note}{command}\n\n{long_video_markdown(report['results'])}"


PIPELINE_PATHS = {
    "python_loop_pyav_decode_1_thread": "PyAV decode only, Python loop, 1 thread",
    "python_loop_pyav_decode_2_threads": "PyAV decode only, 2 Python threads",
    "pyav_tf_data_1_thread": "PyAV `tf.data`, 1 thread",
    "pyav_tf_data_all_cores": "PyAV `tf.data`, all cores",
    "pyav_tf_data_all_cores_frame_step_1": "PyAV `tf.data`, all cores, frame step 1",
    "tfrecord_tf_data_1_thread": "TFRecord `tf.data`, 1 thread",
    "tfrecord_tf_data_all_cores": "TFRecord `tf.data`, all cores",
}


def recorded_pipeline_table(name: str = "data_pipeline") -> str:
    """`benchmarks/data_pipeline.py`'s recorded rates, below the line saying where they ran."""
    report = json.loads((RESULTS / f"{name}.json").read_text())
    cpu = report.get("cpu", "CPU not recorded")
    lines = [
        f"Measured on {report['cores']} cores ({cpu}), TensorFlow {report['tensorflow']}, load "
        f"average {report['load_average_1min_before_after'][0]} before: {report['clip']}; "
        f"{report['videos']}; TFRecords of {report['tfrecords']}.",
        "",
        "| path | clips/s (wall) | clips per CPU-second | cores the process got |",
        "| --- | --- | --- | --- |",
    ]
    for key, rate in report["clips_per_second"].items():
        lines.append(
            f"| {PIPELINE_PATHS.get(key, key)} | {rate} | {report['clips_per_cpu_second'][key]} "
            f"| {report['cores_used'][key]} |"
        )
    return "\n".join(lines)


def live_markdown(results) -> str:
    """The Markdown table of `benchmarks/live.py`'s runs."""
    lines = [
        "| model | clip | paced: latency median s | p95 s | clips classified / cut | "
        "flat out, every clip: video frames/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        name = r["model"] + (f" (alpha {r['alpha']:g})" if "alpha" in r else "")
        paced, flat = r["paced"], r["flat_out"]
        lines.append(
            f"| {name} | {'x'.join(map(str, r['clip']))} every {r['stride']} | "
            f"{paced['latency_median']:.2f} | {paced['latency_p95']:.2f} | "
            f"{paced['clips']} / {paced['clips_cut']} | {flat['video_frames_per_s']} |"
        )
    return "\n".join(lines)


def recorded_live_table(name: str = "live") -> str:
    """`benchmarks/live.py`'s recorded run, below the line saying where it ran."""
    report = json.loads((RESULTS / f"{name}.json").read_text())
    return f"{machine_line(report)}; {report['stream']}.\n\n{live_markdown(report['results'])}"


BEAM_RUNS = {
    "one_process": "one process (no Beam)",
    "beam_1_workers": "Beam DirectRunner, 1 worker process",
    "beam_2_workers": "Beam DirectRunner, 2 worker processes",
}


def recorded_beam_table(name: str = "beam") -> str:
    """`benchmarks/beam.py`'s videos per second and the Kinetics-400 estimate from them."""
    report = json.loads((RESULTS / f"{name}.json").read_text())
    rates, walls = report["videos_per_second"], report["wall_seconds"]
    extensions = ", ".join(report["extensions"]) or "extensions not recorded"
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines = [
        f"Measured on {report['cores']} cores ({report['cpu']}: {extensions}), {versions}, load "
        f"average {report['load_average_1min_before']} before: {report['corpus']}; prediction "
        f"with {report['model']}. `{report['command']}`",
        "",
        "| run | preparation videos/s | (wall s) | prediction videos/s | (wall s) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, label in BEAM_RUNS.items():
        prepare, predict = f"prepare_{key}", f"predict_{key}"
        lines.append(
            f"| {label} | {rates[prepare]} | {walls[prepare]} | {rates[predict]} "
            f"| {walls[predict]} |"
        )
    cost = report["cpu_seconds_per_video_one_process"]
    estimate = report["kinetics400_train_hours_on_n_workers"]
    workers = list(estimate["prepare"])
    lines += [
        "",
        f"Kinetics-400 training set on N Dataflow workers ({report['estimate']}; "
        f"{cost['prepare']} CPU-s per video to prepare, {cost['predict']} to predict):",
        "",
        "| N workers | " + " | ".join(workers) + " |",
        "| --- | " + " | ".join("---" for _ in workers) + " |",
        "| preparation, hours | " + " | ".join(str(estimate["prepare"][n]) for n in workers) + " |",
        "| prediction, hours | " + " | ".join(str(estimate["predict"][n]) for n in workers) + " |",
    ]
    return "\n".join(lines)
