"""Post-training quantization (PTQ) of a trained FP32 model: a quantization plan and KL
(TensorRT entropy) calibrated scales, saved as one JSON next to the model.

Usage:
    python -m rsqasr.bin.quantize --exp_dir exp/train_convdfsmn --plan wino \
        --calib_dir data/train --calib_utts 200 --out exp/train_convdfsmn/ptq_wino/quant.json
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from rsqasr.bin._cli import make_parser, run
from rsqasr.inference import calibration_batches, load_asr
from rsqasr.quant import calibrate, make_plan, save_quant
from rsqasr.utils.log import progress_enabled


def main(args) -> None:
    torch.set_num_threads(args.num_threads)
    exp = Path(args.exp_dir)
    model, _, conf = load_asr(exp, exp / args.model)
    if conf.get("quant"):
        raise ValueError(f"{exp}: already a quantization-aware (RSQ) model; PTQ takes an FP32 experiment")
    plan = make_plan(model.net, kind=args.plan, quantize_classifier=args.quantize_classifier == "true",
                     depthwise=args.depthwise)
    t0 = time.time()
    if args.calib_utts < 1:
        raise ValueError(f"--calib_utts must be >= 1, got {args.calib_utts}")
    batches = calibration_batches(model, args.calib_dir, args.calib_utts, seed=args.seed)
    scales = calibrate(model.net, plan, batches, method=args.method, progress=progress_enabled())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_quant(out, plan, scales)
    print(plan.table())
    logging.info("%s: %s plan, %d quantized layers, %s calibration on %d utterances of %s in %.0f s", out, args.plan,
                 len(plan.quantized_layers()), args.method, len(batches), args.calib_dir, time.time() - t0)


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--exp_dir", required=True, help="FP32 training experiment dir")
    p.add_argument("--model", default="valid.cer.ave.pth", help="model file in --exp_dir")
    p.add_argument("--plan", choices=["wino", "int8_gemm"], default="wino")
    p.add_argument("--quantize_classifier", choices=["true", "false"], default="false")
    p.add_argument("--depthwise", choices=["int8", "fp32"], default="int8", help="the DFSMN memory layers")
    p.add_argument("--method", choices=["kl", "max"], default="kl", help="activation calibration")
    p.add_argument("--calib_dir", required=True, help="data dir to calibrate on (a subset of train)")
    p.add_argument("--calib_utts", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="quant.json to write (plan + scales)")
    p.add_argument("--num_threads", type=int, default=2)
    return p


if __name__ == "__main__":
    run(main, get_parser())
