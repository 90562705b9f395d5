"""Compare two computations of the same features: rsq-decode's fbank from audio (``--dump-feats``
arks) against the recipe's stage-2 features (kaldi-native-fbank, a feats.scp).

Writes --out (JSON): {"label", "utts", "frames", "max_abs_diff", "mean_abs_diff",
"frames_over_1e-3", "worst": [utt, frame, bin, a, b]}. An utterance missing from either side, or
with another shape, is an error naming it.

Usage:
    python -m rsqasr.bin.compare_feats --a exp/x/decode_test_wav/feats.1.ark exp/x/decode_test_wav/feats.2.ark \
        --b data/test/feats.scp --label "rsq-decode fbank vs stage 2" --out exp/x/decode_test_wav/wav_features.json
"""

from __future__ import annotations

import json
import logging

import kaldiio
import numpy as np

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.datadir import DataDirError
from rsqasr.utils.fileio import atomic_write_text


def _load(paths: list[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for p in paths:
        items = kaldiio.load_scp(p).items() if p.endswith(".scp") else kaldiio.load_ark(p)
        for k, v in items:
            out[k] = np.asarray(v, dtype=np.float32)
    return out


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict:
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise DataDirError(f"the two feature sets cover different utterances (e.g. {only[0]})")
    frames = over = 0
    total, worst = 0.0, (0.0, "", 0, 0, 0.0, 0.0)
    for utt in sorted(a):
        x, y = a[utt], b[utt]
        if x.shape != y.shape:
            raise DataDirError(f"{utt}: shapes {x.shape} and {y.shape} differ")
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        frames += d.shape[0]
        over += int((d.max(axis=1) > 1e-3).sum()) if d.size else 0
        total += float(d.sum())
        if d.size and d.max() > worst[0]:
            t, f = np.unravel_index(int(d.argmax()), d.shape)
            worst = (float(d.max()), utt, int(t), int(f), float(x[t, f]), float(y[t, f]))
    n = sum(v.size for v in a.values())
    return {"utts": len(a), "frames": frames, "max_abs_diff": worst[0], "mean_abs_diff": total / max(n, 1),
            "frames_over_1e-3": over, "worst": list(worst[1:])}


def main(args) -> None:
    rep = {"label": args.label, **compare(_load(args.a), _load([args.b]))}
    atomic_write_text(args.out, json.dumps(rep, ensure_ascii=False, indent=1) + "\n")
    logging.info("%s: %d utterances, %d frames: max |a - b| %.2e, mean %.2e, %d frames over 1e-3", args.label,
                 rep["utts"], rep["frames"], rep["max_abs_diff"], rep["mean_abs_diff"], rep["frames_over_1e-3"])


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--a", nargs="+", required=True, help="Kaldi arks (or scps) of the features to check")
    p.add_argument("--b", required=True, help="feats.scp of the reference features")
    p.add_argument("--label", default="")
    p.add_argument("--out", required=True, help="JSON report (written atomically)")
    return p


if __name__ == "__main__":
    run(main, get_parser())
