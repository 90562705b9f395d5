"""Make Kaldi data dirs data/{train,dev,test} from an AISHELL-1-layout tree.

Usage:
    python -m rsqasr.bin.aishell_data_prep \
        --audio_dir db/data_aishell/wav \
        --transcript db/data_aishell/transcript/aishell_transcript_v0.8.txt \
        --data_dir data
"""

from __future__ import annotations

import logging

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.aishell import SPLITS, prepare_aishell


def main(args) -> None:
    stats = prepare_aishell(args.audio_dir, args.transcript, args.data_dir, splits=tuple(args.splits.split(",")))
    for split, n in stats.utts.items():
        logging.info("%s/%s: %d utterances, %d speakers", args.data_dir, split, n, stats.speakers[split])
    logging.info("dropped %d audio files without transcript, %d transcript lines without audio",
                 stats.no_transcript, stats.no_audio)


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--audio_dir", required=True, help="<root>/data_aishell/wav with train/dev/test below")
    p.add_argument("--transcript", required=True, help="aishell_transcript_v0.8.txt")
    p.add_argument("--data_dir", required=True, help="output: <data_dir>/<split>/")
    p.add_argument("--splits", default=",".join(SPLITS), help="comma-separated split names")
    return p


if __name__ == "__main__":
    run(main, get_parser())
