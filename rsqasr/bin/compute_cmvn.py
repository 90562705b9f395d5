"""Global CMVN statistics of a feats.scp, in Kaldi's format (2 x (D+1) float64 matrix).

Usage:
    python -m rsqasr.bin.compute_cmvn --feats_scp data/train/feats.scp --out data/train/cmvn.ark
"""

from __future__ import annotations

import logging
from pathlib import Path

import kaldiio
from tqdm import tqdm

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.datadir import DataDirError, read_kv
from rsqasr.features.cmvn import CMVNStats
from rsqasr.utils.fileio import atomic_open
from rsqasr.utils.log import progress_enabled


def main(args) -> None:
    feats_scp = Path(args.feats_scp)
    entries = read_kv(feats_scp)
    stats = None
    for lineno, (utt, entry) in enumerate(tqdm(entries.items(), disable=not progress_enabled(), unit="utt"), 1):
        try:
            mat = kaldiio.load_mat(entry)
        except Exception as e:  # noqa: BLE001 - any reader failure is bad input here
            raise DataDirError(f"{feats_scp}:{lineno}: cannot read features of '{utt}': {e}") from e
        if stats is None:
            stats = CMVNStats(mat.shape[1])
        try:
            stats.accumulate(mat)
        except ValueError as e:
            raise DataDirError(f"{feats_scp}:{lineno}: '{utt}': {e}") from e
    if stats is None:
        raise DataDirError(f"{feats_scp}: no features")
    with atomic_open(args.out, "wb") as f:
        kaldiio.save_mat(f, stats.stats)
    logging.info("%s: CMVN stats over %d frames of %d utterances, dim %d", args.out, int(stats.stats[0, -1]),
                 len(entries), stats.stats.shape[1] - 1)


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--feats_scp", required=True)
    p.add_argument("--out", required=True, help="output cmvn.ark (Kaldi binary matrix)")
    return p


if __name__ == "__main__":
    run(main, get_parser())
