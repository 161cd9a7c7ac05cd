"""Writes the small checkpoints in this folder once; not run by the tests.

The torch files are written by a real `torch.save` (torch 2.14.1), in both of
its formats, so kvid's torch-free reader is checked against the real thing.
The S3D-G file needs the key layout of a tiny kvid S3D-G, which needs kvid,
so this runs in two steps:

    PYTHONPATH=. /work/venv/bin/python tests/weights/data/make_files.py layout /tmp/s3dg.json
    /work/torchvenv/bin/python tests/weights/data/make_files.py torch /tmp/s3dg.json
"""

import json
import os
import pickle
import sys
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = "/tmp/kvid-malicious-pickle-ran"
# s3d_howto100m.pth also holds MIL-NCE's text tower; both towers end in a 512-d embedding
# (16 here, to keep the file small).
TEXT_MODULE = {
    "text_module.word_embd.weight": (10, 6),
    "text_module.fc1.weight": (8, 6),
    "text_module.fc1.bias": (8,),
    "text_module.fc2.weight": (16, 8),
    "text_module.fc2.bias": (16,),
}


def tiny_state_dict(torch):
    """Values the tests recompute with numpy (see test_unpickle.expected_tiny)."""
    base = torch.arange(24, dtype=torch.float32) / 10
    return {
        "conv.weight": base[:6].reshape(2, 3, 1, 1, 1),
        "conv.bias": torch.nn.Parameter(torch.tensor([0.5, -0.5])),
        "fc.weight": base.reshape(4, 6).t(),  # a strided view
        "fc.bias": base[20:23],  # an offset into a shared storage
        "bn.num_batches_tracked": torch.tensor(7),
        "half": torch.arange(4, dtype=torch.float16) / 4,
        "flags": torch.tensor([True, False]),
    }


class _System:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class _Eval:
    def __reduce__(self):
        return (eval, (f"open({MARKER!r}, 'w')",))


def layout(out):
    import kvid
    from kvid.weights.torch_state_dict import torch_weight_map, weighted_layers

    fixture = os.path.join(HERE, "..", "..", "fixtures", "parity", "s3dg__public.npz")
    keys = [str(k) for k in np.load(fixture)["keys"]]
    model = kvid.S3DG(alpha=1 / 32, space_to_depth=True, classes=16)
    shapes = {}
    for layer in weighted_layers(model):
        for param, (variable, _) in torch_weight_map(layer).items():
            shape = tuple(variable.shape)
            if len(shape) == 5:
                shape = (shape[4], shape[3], *shape[:3])
            elif len(shape) == 2:
                shape = shape[::-1]
            sub, _, leaf = param.rpartition(".")
            module = f"{layer.name}_{sub}" if sub else layer.name
            shapes[(module.replace(".", "_"), leaf)] = shape
    result = {}
    for key in keys:
        module, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            result[key] = []
        else:
            result[key] = list(shapes.pop((module.replace(".", "_"), leaf)))
    assert not shapes, shapes
    result.update({k: list(v) for k, v in TEXT_MODULE.items()})
    with open(out, "w") as file:
        json.dump(result, file)


def write_torch(layout_path):
    import torch

    state = tiny_state_dict(torch)
    torch.save(state, os.path.join(HERE, "tiny_zip.pth"))
    torch.save(state, os.path.join(HERE, "tiny_legacy.pt"), _use_new_zipfile_serialization=False)

    with open(layout_path) as file:
        shapes = json.load(file)
    generator = torch.Generator().manual_seed(0)
    s3dg = {}
    for key, shape in shapes.items():
        if not shape:
            s3dg[key] = torch.tensor(3)
        elif key.endswith("running_var"):
            s3dg[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            s3dg[key] = torch.randn(shape, generator=generator) * 0.1
    # The 2020 release predates torch's zip format: write the legacy one.
    torch.save(
        s3dg, os.path.join(HERE, "s3d_howto100m_tiny.pth"), _use_new_zipfile_serialization=False
    )

    # Malicious files: a legacy-format pickle calling os.system, a zip whose
    # data.pkl does, and a plain pickle calling eval.
    with open(os.path.join(HERE, "malicious_legacy.pth"), "wb") as file:
        pickle.dump(0x1950A86A20F9469CFC6C, file, protocol=2)
        pickle.dump(1001, file, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True}, file, protocol=2)
        pickle.dump({"conv.weight": _System()}, file, protocol=2)
    with zipfile.ZipFile(os.path.join(HERE, "tiny_zip.pth")) as good:
        with zipfile.ZipFile(os.path.join(HERE, "malicious_zip.pth"), "w") as bad:
            for info in good.infolist():
                data = good.read(info)
                if info.filename.endswith("data.pkl"):
                    data = pickle.dumps({"conv.weight": _System()}, protocol=2)
                bad.writestr(info.filename, data)
    with open(os.path.join(HERE, "malicious_numpy.ckpt"), "wb") as file:
        pickle.dump({"params": {"w": _Eval()}}, file, protocol=4)


if __name__ == "__main__":
    {"layout": layout, "torch": write_torch}[sys.argv[1]](sys.argv[2])
