"""Export a trained model to the engine's model file (src_arm/FORMAT.md) for rsq-decode.

Variants: FP32 (--quant none, every layer fp32), INT8 GEMM and INT8 Winograd (--quant int8_gemm |
wino: an RSQ experiment as trained, or an FP32 experiment with --quant_json from
rsqasr.bin.quantize). Before reporting success the written file is read back and run through the
integer reference on a few utterances of --check_data_dir: its logits must equal the quantized
model's (integer layers exactly, FP32 layers within float tolerance). The write is atomic.

Usage:
    python -m rsqasr.bin.export --exp_dir exp/train_convdfsmn --model valid.cer.ave.pth \
        --quant wino --quant_json exp/train_convdfsmn/ptq_wino/quant.json \
        --check_data_dir data/dev --out exp/train_convdfsmn/export/ptq_wino.rsq
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from rsqasr.bin._cli import make_parser, run
from rsqasr.quant.source import VARIANTS


def main(args) -> None:
    from rsqasr.export import export

    torch.set_num_threads(args.num_threads)
    exp = Path(args.exp_dir)
    model_file = Path(args.model) if Path(args.model).is_absolute() or Path(args.model).exists() else exp / args.model
    rep = export(exp, model_file, args.out, quant=args.quant, quant_json=args.quant_json,
                 check_data_dir=args.check_data_dir, check_utts=args.check_utts, sample_rate=args.sample_rate)
    chk = rep.get("check")
    if chk:
        logging.info("%s: %s model, %d bytes; checked on %d utterances: logits equal the integer reference's, "
                     "max |diff| vs PyTorch %.2e of max|logit|, greedy output equal on %d", rep["file"],
                     rep["variant"], rep["bytes"], chk["utterances"], chk["max_rel_diff_vs_torch"],
                     chk["greedy_equal_vs_torch"])
    else:
        logging.warning("%s: %s model, %d bytes; read back but not checked on data (no --check_data_dir)",
                        rep["file"], rep["variant"], rep["bytes"])


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--exp_dir", required=True, help="training experiment dir (FP32 or RSQ)")
    p.add_argument("--model", default="valid.cer.ave.pth", help="model file (relative to --exp_dir or a path)")
    p.add_argument("--quant", choices=VARIANTS, default="none",
                   help="none: FP32; int8_gemm / wino: the quantized model (RSQ experiment or --quant_json)")
    p.add_argument("--quant_json", default=None, help="PTQ: quant.json (plan + scales) from rsqasr.bin.quantize")
    p.add_argument("--check_data_dir", default=None, help="data dir (feats.scp) to check the written file on")
    p.add_argument("--check_utts", type=int, default=3, help="utterances to check")
    p.add_argument("--out", required=True, help="model file to write (atomically)")
    p.add_argument("--sample_rate", type=int, default=16000,
                   help="sample rate of the audio the features were computed from (FBNK: rsq-decode's audio input)")
    p.add_argument("--num_threads", type=int, default=1)
    return p


if __name__ == "__main__":
    run(main, get_parser())
