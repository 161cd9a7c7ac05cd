"""The benchmark scripts still run (one tiny pass each); their timings are not tested."""

import json
import os
import platform

from tests.processes import run_python


def _run(script, *args):
    return run_python(os.path.join("benchmarks", script), *args, timeout=240).stdout


def test_models_benchmark_writes_its_json_and_table(tmp_path):
    output = tmp_path / "models.json"
    stdout = _run(
        "models.py",
        "--models=r2d_18",
        "--batch_sizes=1",
        "--repeats=1",
        "--warmup=0",
        "--train_batch=1",
        "--alpha=0.0625",
        "--backend=jax",
        f"--output={output}",
    )
    report = json.loads(output.read_text())
    (result,) = report["results"]
    assert result["model"] == "r2d_18"
    (run,) = result["runs"]
    assert run["kvid_forward_s"] > 0 and run["kvid_train_step_s"] > 0 and run["jax_forward_s"] > 0
    assert report["versions"]["jax"]
    assert "| r2d_18 | 8x112x112 | 1 |" in stdout
    machine = report["machine"]
    assert machine["cpu"] and len(machine["load_average_at_start"]) == 3
    # The extensions the benchmark names are the ones this CPU's flags list.
    with open("/proc/cpuinfo") as f:
        flags = next(line for line in f if line.startswith("flags")).split(":")[1].split()
    assert machine["extensions"] and set(machine["extensions"]) <= set(flags)
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert machine["onednn_isa"]  # e.g. "Intel AVX2", "Intel AVX-512 with AVX512BW, ..."
    assert "| model | clip | batch | TensorFlow forward s | jax forward s | jax / TF |" in stdout


def test_op_profile_lists_op_types_and_convolution_layers():
    stdout = _run(
        "op_profile.py", "--model=mc3_18", "--batch=1", "--frames=2", "--size=32", "--steps=1"
    )
    assert "Conv3DBackpropFilterV2" in stdout
    assert "layer1_0_conv1_0" in stdout
