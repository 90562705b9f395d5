"""Build the CTC token list from a Kaldi text file: characters, or sentencepiece BPE.

Usage:
    python -m rsqasr.bin.make_token_list --text data/train/text --out data/token_list/char/tokens.txt
    python -m rsqasr.bin.make_token_list --text data/train/text --token_type bpe --nbpe 500 \
        --bpe_model_prefix data/token_list/bpe_unigram500/bpe --out data/token_list/bpe_unigram500/tokens.txt
"""

from __future__ import annotations

import logging

from rsqasr.bin._cli import make_parser, run
from rsqasr.data.datadir import read_kv
from rsqasr.features.tokens import char_token_list, train_bpe
from rsqasr.utils.fileio import atomic_write_text


def main(args) -> None:
    texts = list(read_kv(args.text).values())
    if args.token_type == "char":
        tokens = char_token_list(texts)
    else:
        if not args.bpe_model_prefix:
            raise ValueError("--token_type bpe needs --bpe_model_prefix")
        tokens = train_bpe(texts, args.bpe_model_prefix, args.nbpe, args.bpe_model_type)
    atomic_write_text(args.out, "".join(t + "\n" for t in tokens))
    logging.info("%s: %d tokens (%s) from %d transcripts", args.out, len(tokens), args.token_type, len(texts))


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--text", required=True, help="Kaldi text file: '<utt> <transcript>'")
    p.add_argument("--out", required=True, help="token list, one token per line")
    p.add_argument("--token_type", choices=["char", "bpe"], default="char")
    p.add_argument("--nbpe", type=int, default=500, help="sentencepiece vocabulary size")
    p.add_argument("--bpe_model_type", choices=["unigram", "bpe"], default="unigram")
    p.add_argument("--bpe_model_prefix", default=None, help="writes <prefix>.model and <prefix>.vocab")
    return p


if __name__ == "__main__":
    run(main, get_parser())
