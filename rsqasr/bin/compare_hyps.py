"""Compare two decodes of the same utterances: how many hypotheses differ, and the CER of each.

The recipe uses it to check the integer reference (what the engine computes) against the
fake-quantized PyTorch model it was derived from: they should decode the same strings nearly
always; a difference comes from a frame where two labels' logits are within the rounding of the
float parts (the dequantization, the float residual adds, the FP32 classifier's summation order).

Writes --out (JSON): {"utts", "differ", "cer_a", "cer_b", "label", "examples": [[utt, hyp_a, hyp_b], ...]}.

Usage:
    python -m rsqasr.bin.compare_hyps --ref data/test/text --a exp/x/decode_test/hyp.txt \
        --b exp/x/decode_test/fakequant/hyp.txt --out exp/x/decode_test/engine_agreement.json
"""

from __future__ import annotations

import json
import logging

from rsqasr.bin._cli import make_parser, run
from rsqasr.bin.score import chars as _chars
from rsqasr.data.datadir import DataDirError, read_kv
from rsqasr.scoring import Counts, align
from rsqasr.utils.fileio import atomic_write_text


def compare(refs: dict[str, str], a: dict[str, str], b: dict[str, str]) -> dict:
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise DataDirError(f"the two decodes cover different utterances (e.g. {only[0]})")
    ca, cb = Counts(), Counts()
    differ = []
    for utt in sorted(a):
        if utt not in refs:
            raise DataDirError(f"no reference for '{utt}'")
        r = _chars(refs[utt])
        ca += align(r, _chars(a[utt])).counts
        cb += align(r, _chars(b[utt])).counts
        if _chars(a[utt]) != _chars(b[utt]):
            differ.append([utt, a[utt], b[utt]])
    return {"utts": len(a), "differ": len(differ), "cer_a": ca.rate, "cer_b": cb.rate, "examples": differ[:20]}


def main(args) -> None:
    res = compare(read_kv(args.ref), read_kv(args.a, allow_empty_value=True), read_kv(args.b, allow_empty_value=True))
    res.update(a=str(args.a), b=str(args.b), label=args.label)
    atomic_write_text(args.out, json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    logging.info("%d of %d hypotheses differ; CER %.2f%% (a) vs %.2f%% (b)", res["differ"], res["utts"],
                 100 * res["cer_a"], 100 * res["cer_b"])


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--ref", required=True, help="Kaldi text with the references")
    p.add_argument("--a", required=True, help="hypotheses (Kaldi text)")
    p.add_argument("--b", required=True, help="other hypotheses of the same utterances")
    p.add_argument("--out", required=True, help="JSON summary to write")
    p.add_argument("--label", default="integer reference vs fake-quant PyTorch", help="what a and b are")
    return p


if __name__ == "__main__":
    run(main, get_parser())
