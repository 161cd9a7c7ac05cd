"""benchmarks/long_video.py still runs (one tiny pass); its timings are not tested."""

import json
import os

from tests.processes import run_python


def test_long_video_benchmark_writes_its_json_and_table(tmp_path):
    output = tmp_path / "long_video.json"
    stdout = run_python(
        os.path.join("benchmarks", "long_video.py"),
        "--minutes=1",
        "--height=36",
        "--width=64",
        "--runs=1:decode,1:transform:r3d_18",
        f"--workdir={tmp_path}",
        f"--output={output}",
        timeout=240,
    ).stdout
    results = json.loads(output.read_text())["results"]
    assert [r["mode"] for r in results] == ["decode", "transform"]
    assert all(r["peak_rss_mb"] > 0 and r["video_frames_per_s"] > 0 for r in results)
    assert "| 1 min 64x36 | decode |" in stdout
