"""Peak memory of a prediction timeline does not grow with the video's length.

A 1-minute 640x360 video (1,800 frames, 1.2 GB as RGB) is predicted in a
fresh process; its peak resident memory is compared with the same process's
peak after predicting a 2-second video first (TensorFlow, the model and the
decoder already warm). Decoding the whole video, as prediction used to, adds
gigabytes; streaming adds nothing that depends on the length.
"""

import json
import textwrap

from tests.processes import run_python

# Holding the video's RGB frames, as prediction used to, is 1.2 GB more; the bound leaves
# room for allocator noise, not for frames: 250 MB is a fifth of them.
GROWTH_BOUND_MB = 250
TOTAL_BOUND_MB = 2000

SCRIPT = textwrap.dedent(
    """
    import json, sys

    import keras

    import kvid
    from kvid.io.encode import write_long_video
    from kvid import inference as prediction

    folder = sys.argv[1]
    short = write_long_video(folder + "/short.mp4", 2, height=360, width=640)
    long = write_long_video(folder + "/long.mp4", 60, height=360, width=640)
    keras.utils.set_random_seed(0)
    model = kvid.R3D18(alpha=0.0625, classes=3, input_shape=(4, 32, 32, 3))

    def peak_mb():
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a
        # 4 GB pytest would report the parent's 4 GB.
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    short_timeline = prediction.predict_video(model, short, class_names="abc", stride=4)
    warm = peak_mb()
    timeline = prediction.predict_video(model, long, class_names="abc", stride=4)
    print(json.dumps({
        "warm_mb": warm,
        "peak_mb": peak_mb(),
        "short_clips": len(short_timeline.starts),
        "clips": len(timeline.starts),
        "last_time": float(timeline.times[-1]),
    }))
    """
)


def test_peak_memory_of_a_1_minute_video_is_that_of_a_2_second_one(tmp_path):
    done = run_python("-c", SCRIPT, str(tmp_path), timeout=240)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(result)  # the measured memory, in the log of a `pytest -s` run
    assert result["short_clips"] == 15  # 60 frames, clips of 4 every 4
    assert result["clips"] == 450  # 1,800 frames
    assert abs(result["last_time"] - (1796 + 1.5) / 30) < 1e-6
    assert result["peak_mb"] - result["warm_mb"] < GROWTH_BOUND_MB, result
    assert result["peak_mb"] < TOTAL_BOUND_MB, result
