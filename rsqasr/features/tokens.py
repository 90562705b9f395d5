"""Token lists for CTC: characters (espnet2's CharTokenizer) or sentencepiece pieces.

The list is ESPnet2's ``token_list`` format, one token per line, its line number the id:
``<blank>`` (id 0, the CTC blank), ``<unk>`` (id 1), then the tokens, most frequent first
(ties in code-point order, so the list is deterministic).
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Iterable

from espnet2.text.char_tokenizer import CharTokenizer

BLANK = "<blank>"
UNK = "<unk>"


def char_token_list(texts: Iterable[str]) -> list[str]:
    tok = CharTokenizer(non_linguistic_symbols=None, space_symbol="<space>")
    counts: collections.Counter[str] = collections.Counter()
    for t in texts:
        counts.update(tok.text2tokens(t))
    ordered = sorted(counts, key=lambda c: (-counts[c], c))
    return [BLANK, UNK, *ordered]


def train_bpe(texts: Iterable[str], model_prefix: str | os.PathLike, vocab_size: int,
              model_type: str = "unigram") -> list[str]:
    """Train a sentencepiece model on ``texts`` (written to ``<model_prefix>.model``) and return
    the token list built from its pieces."""
    import sentencepiece as spm

    model_prefix = Path(model_prefix)
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    corpus = model_prefix.with_name(model_prefix.name + ".train.txt")
    corpus.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    try:
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(model_prefix), vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, input_sentence_size=100_000_000, unk_id=0, bos_id=-1, eos_id=-1,
            minloglevel=2)
    except RuntimeError as e:  # e.g. a vocabulary smaller than the character set
        raise ValueError(f"sentencepiece training on {corpus} failed: {e}") from e
    sp = spm.SentencePieceProcessor(model_file=str(model_prefix) + ".model")
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if i != sp.unk_id()]
    return [BLANK, UNK, *pieces]
