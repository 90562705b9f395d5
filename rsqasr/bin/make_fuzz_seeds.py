"""Write the seed corpora of src_arm's fuzzers (src_arm/fuzz/corpus/{model,ark}/): very small
exported models of both model kinds and every plan (fp32, int8 GEMM, Winograd, Winograd with an
int8 classifier), one of them again with the optional FBNK section (audio input), and short
binary arks. Deterministic. The engine only reads these files (it
never needs Python); this step writes them from the exporter, so the seeds follow the format.

Usage:
    python -m rsqasr.bin.make_fuzz_seeds --out src_arm/fuzz/corpus
"""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import torch

from rsqasr.bin._cli import make_parser, run
from rsqasr.export import fp32_intmodel, write_model
from rsqasr.features.fbank import fbank_settings
from rsqasr.models import build_model
from rsqasr.quant import IntModel, calibrate, make_plan, quantize_model

DIM, VOCAB = 6, 5
TOKENS = ["<blank>", "<unk>", "a", "<space>", "b"]
CONFS = {"dfsmn": {"kind": "convdfsmn", "front_channels": 8, "context_kernel": 5, "unit_widths": [8],
                   "num_blocks": 1, "hidden_size": 8, "proj_size": 6, "memory_size": 3, "output_size": 8},
         "w2l": {"kind": "wav2letter", "front_channels": 8, "conv_channels": [8, 6], "conv_kernels": [4, 3],
                 "fc_sizes": [8]}}


def main(args) -> None:
    out = Path(args.out)
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "ark").mkdir(parents=True, exist_ok=True)
    mean, std = np.linspace(-1, 1, DIM).astype(np.float32), np.linspace(0.5, 2, DIM).astype(np.float32)
    for name, conf in CONFS.items():
        for variant in ("fp32", "int8_gemm", "wino", "wino_cls"):
            torch.manual_seed(0)
            net = build_model(conf, DIM, VOCAB).eval()
            if variant == "fp32":
                im = fp32_intmodel(net)
            else:
                plan = make_plan(net, kind=variant.replace("_cls", ""), quantize_classifier=variant.endswith("cls"))
                scales = calibrate(net, plan, [(torch.randn(2, 30, DIM), torch.full((2,), 30))], method="max")
                im = IntModel.from_fake_quant(quantize_model(net, plan, scales))
            write_model(out / "model" / f"{name}_{variant}.rsq", im, TOKENS, "char", mean, std, {"seed": name})
            if (name, variant) == ("dfsmn", "wino"):  # the FBNK section's parser gets seeds too
                write_model(out / "model" / f"{name}_{variant}_fbank.rsq", im, TOKENS, "char", mean, std,
                            {"seed": name}, fbank=fbank_settings(num_mel_bins=DIM))
    rng = np.random.default_rng(0)
    with kaldiio.WriteHelper(f"ark:{out / 'ark' / 'two.ark'}") as w:
        w["u1"] = rng.standard_normal((3, 4)).astype(np.float32)
        w["u2"] = rng.standard_normal((1, 2)).astype(np.float32)
    with kaldiio.WriteHelper(f"ark:{out / 'ark' / 'double.ark'}") as w:
        w["d"] = rng.standard_normal((2, 3)).astype(np.float64)
    (out / "ark" / "cm.ark").write_bytes(b"k \0BCM \x04\x01\x00\x00\x00")




def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--out", required=True, help="corpus dir (gets model/ and ark/)")
    return p


if __name__ == "__main__":
    run(main, get_parser())
