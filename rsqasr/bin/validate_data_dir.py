"""Check (and with --fix, repair) a Kaldi data directory, like Kaldi's validate_data_dir.sh and
fix_data_dir.sh.

Usage:
    python -m rsqasr.bin.validate_data_dir data/train
    python -m rsqasr.bin.validate_data_dir --check_feats true --feat_dim 80 data/train
    python -m rsqasr.bin.validate_data_dir --fix true data/train
    python -m rsqasr.bin.validate_data_dir --check_audio false --disjoint_from "data/dev data/test" data/train
"""

from __future__ import annotations

import logging
import sys

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.datadir import fix_data_dir, validate_data_dir


def str2bool(v: str) -> bool:
    if v not in ("true", "false"):
        raise ValueError(f"expected true or false, got {v!r}")
    return v == "true"


def main(args) -> None:
    if args.fix:
        dropped = fix_data_dir(args.data_dir)
        for name, n in dropped.items():
            if n:
                logging.warning("%s/%s: dropped %d utterances", args.data_dir, name, n)
    report = validate_data_dir(args.data_dir, check_audio=args.check_audio, check_feats=args.check_feats,
                               feat_dim=args.feat_dim)
    for w in report.warnings:
        logging.warning("%s", w)
    if not report.ok:
        for e in report.errors:
            logging.error("%s", e)
        sys.exit(1)
    for other in args.disjoint_from.split():
        check_disjoint(args.data_dir, other)
    logging.info("%s: OK (%d utterances, %d speakers)", args.data_dir, report.num_utts, report.num_spks)


def check_disjoint(data_dir: str, other: str) -> None:
    """Exit 1 if an utterance id of ``data_dir`` is also in ``other`` (a train/test leak)."""
    from pathlib import Path

    from rsqasr.data.datadir import read_kv

    a, b = read_kv(Path(data_dir) / "utt2spk"), read_kv(Path(other) / "utt2spk")
    both = sorted(set(a) & set(b))
    if both:
        logging.error("%s/utt2spk and %s/utt2spk share %d utterance id(s) (e.g. %s): the same utterance in "
                      "training and evaluation data", data_dir, other, len(both), both[0])
        sys.exit(1)


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--fix", type=str2bool, default=False, help="first drop utterances missing from any file and sort")
    p.add_argument("--check_audio", type=str2bool, default=True, help="check that every wav.scp file exists")
    p.add_argument("--check_feats", type=str2bool, default=False, help="load every feats.scp entry")
    p.add_argument("--feat_dim", type=int, default=None, help="expected feature dimension with --check_feats")
    p.add_argument("--disjoint_from", default="", help="data dirs (space-separated) that may share no utterance id "
                   "with this one (train vs dev/test)")
    p.add_argument("data_dir")
    return p


if __name__ == "__main__":
    run(main, get_parser())
