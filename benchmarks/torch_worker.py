"""Runs torchvision models for benchmarks/models.py in a process of their own.

TensorFlow's and PyTorch's thread pools slow each other down in one process,
so the benchmark drives this worker over stdin/stdout, one JSON line each way:
`{"build": key, "batch": b, "clip": [t, h, w, c], "train_clip": [...], "train_batch": n}`
then `{"run": "forward"}` or `{"run": "train"}`, answered with `{"seconds": s}`.
"""

import json
import os
import sys
import time

import torch
import torchvision.models.video as video_models


def build(request):
    """Callables for one model's forward and training step."""
    torch.set_num_threads(os.cpu_count())
    model = getattr(video_models, request["build"])().eval()
    t, h, w, c = request["clip"]
    x = torch.rand(request["batch"], c, t, h, w)

    def forward():
        with torch.inference_mode():
            model(x)

    trainer = getattr(video_models, request["build"])().train()
    optimizer = torch.optim.SGD(trainer.parameters(), lr=0.01, momentum=0.9)
    t, h, w, c = request["train_clip"]
    xt = torch.rand(request["train_batch"], c, t, h, w)
    yt = torch.arange(request["train_batch"]) % 400

    def train():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(trainer(xt), yt).backward()
        optimizer.step()

    return {"forward": forward, "train": train}


def main():
    runs = {}
    for line in sys.stdin:
        request = json.loads(line)
        if "build" in request:
            runs = build(request)
            answer = {
                "torch": torch.__version__,
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            }
        else:
            start = time.perf_counter()
            runs[request["run"]]()
            answer = {"seconds": time.perf_counter() - start}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
