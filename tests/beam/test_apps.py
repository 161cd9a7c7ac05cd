"""The apps with `--runner` (Beam's flags passed through), without it, and without Beam."""

import glob
import json
import os

from tests.apps import assert_quiet, run_app
from tests.processes import run_python

BLOCK_BEAM = "import sys; sys.modules['apache_beam'] = None; "


def test_without_beam_kvid_runs_and_runner_names_the_extra(corpus, tmp_path):
    root, _, _ = corpus
    common = ["prepare", f"--input_dir={root}", f"--output_dir={tmp_path}"]
    # One process: core kvid imports no Beam; without --runner a Beam flag is a stray argument;
    # with --runner and Beam missing, the error names the extra.
    code = (
        "import sys, kvid, apps; print('apache_beam' in sys.modules); "
        f"{BLOCK_BEAM}from apps import prepare_dataset as p\n"
        f"for extra in ('--direct_num_workers=2', '--runner=DirectRunner'):\n"
        f"    sys.argv = {common!r} + [extra]\n"
        "    try:\n        p.run()\n    except SystemExit as done:\n        print(done.code)"
    )
    done = run_python("-c", code, check=False)
    assert done.stdout.split() == ["False", "1", "1"]
    assert "Unexpected arguments: ['--direct_num_workers=2']" in done.stderr
    assert 'pip install "kvid[beam]"' in done.stderr
    assert not os.listdir(tmp_path)


def test_prepare_dataset_on_direct_runner_passes_beam_flags_through(corpus, tmp_path):
    root, good, bad = corpus
    done = run_app(
        "prepare_dataset",
        f"--input_dir={root}",
        f"--output_dir={tmp_path}",
        "--num_shards=2",
        "--runner=DirectRunner",
        "--direct_num_workers=1",  # a Beam flag absl does not know
    )
    assert_quiet(done.stderr)
    assert f"Wrote {len(good)} videos to 2 shards in {tmp_path}." in done.stdout
    assert f"Skipped {len(bad)} videos:" in done.stdout
    assert all(f"  {path}: Cannot read video" in done.stdout for path in bad)
    assert len(glob.glob(str(tmp_path / "videos-0000?-of-00002.tfrecord"))) == 2


def test_predict_corpus_in_one_process(corpus, model_path, tmp_path):
    root, good, bad = corpus
    output = tmp_path / "p.jsonl"
    common = [f"--input={root}", f"--model_path={model_path}", f"--output={output}"]
    done = run_app("predict_corpus", *common, "--top_k=1", "--noprogress")
    assert_quiet(done.stderr)
    assert f"Predicted {len(good)} videos into {output}." in done.stdout
    records = [json.loads(line) for line in open(output)]
    assert sorted(r["video"] for r in records) == good
    assert all(len(r["top"]) == 1 and len(r["probabilities"]) == 2 for r in records)
