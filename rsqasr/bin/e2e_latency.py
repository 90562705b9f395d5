"""End-to-end host latency of a trained model at 600 input frames, batch 1, outside the engine:
PyTorch FP32 (eager) and onnxruntime FP32 (the network exported with torch.onnx), at 1 and 2
threads, to compare with rsq-decode's numbers (rsqasr.bin.engine_latency). The timed part is
the network from normalized features to logits (what rsq-decode's "ms per 600 frames" times).

Writes --out (JSON): {"frames": 600, "torch_fp32_ms": {"1": x, "2": x}, "ort_fp32_ms": {...}}.

Usage:
    python -m rsqasr.bin.e2e_latency --exp_dir exp/train_convdfsmn --out exp/train_convdfsmn/export/e2e_latency.json
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rsqasr.bin._cli import make_parser, run
from rsqasr.utils.fileio import atomic_write_text

FRAMES = 600


class _Net(torch.nn.Module):
    """net(feats) -> logits at batch 1 (lengths fixed to the input's), for tracing."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x, torch.full((1,), x.shape[1], dtype=torch.long))[0]


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def main(args) -> None:
    from rsqasr.inference import load_asr

    exp = Path(args.exp_dir)
    model, _, conf = load_asr(exp, exp / args.model)
    if conf.get("quant"):
        raise ValueError(f"{exp}: an RSQ experiment; give the FP32 one")
    net = _Net(model.net).eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, FRAMES, conf["input_dim"])).astype(np.float32))
    res: dict = {"frames": FRAMES, "torch_fp32_ms": {}, "ort_fp32_ms": {}}
    for t in args.threads:
        torch.set_num_threads(t)
        with torch.inference_mode():
            res["torch_fp32_ms"][str(t)] = _median_ms(lambda: net(x), args.repeats)
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as td:
        onnx_path = Path(td) / "model.onnx"
        torch.onnx.export(net, (x,), str(onnx_path), input_names=["feats"], output_names=["logits"], dynamo=False)
        for t in args.threads:
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
            feed = {"feats": x.numpy()}
            with torch.inference_mode():
                ref = net(x).numpy()
            got = sess.run(None, feed)[0]
            if not np.allclose(got, ref, rtol=1e-3, atol=1e-3 * float(np.abs(ref).max())):
                raise RuntimeError(f"onnxruntime output differs from PyTorch (max |diff| {np.abs(got - ref).max():.3g})")
            res["ort_fp32_ms"][str(t)] = _median_ms(lambda: sess.run(None, feed), args.repeats)
    for k in ("torch_fp32_ms", "ort_fp32_ms"):
        logging.info("%s: %s", k, ", ".join(f"{v:.2f} ms ({t} thr)" for t, v in res[k].items()))
    atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--exp_dir", required=True, help="FP32 training experiment dir")
    p.add_argument("--model", default="valid.cer.ave.pth")
    p.add_argument("--out", required=True, help="JSON to write")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=20)
    return p


if __name__ == "__main__":
    run(main, get_parser())
