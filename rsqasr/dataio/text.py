"""Text <-> token ids with espnet2's tokenizers and TokenIDConverter over our token list."""

from __future__ import annotations

from pathlib import Path

from espnet2.text.char_tokenizer import CharTokenizer
from espnet2.text.token_id_converter import TokenIDConverter

from rsqasr.data.datadir import DataDirError


class TextProcessor:
    """Characters (``token_type='char'``) or sentencepiece pieces (``bpe``, with ``bpe_model``)."""

    def __init__(self, token_list: str | Path, token_type: str = "char", bpe_model: str | Path | None = None):
        token_list = Path(token_list)
        if not token_list.is_file():
            raise DataDirError(f"{token_list}: token list not found")
        self.tokens = token_list.read_text(encoding="utf-8").splitlines()
        if len(self.tokens) < 3 or self.tokens[0] != "<blank>" or self.tokens[1] != "<unk>":
            raise DataDirError(f"{token_list}: expected '<blank>' then '<unk>' first, and at least one token")
        self.converter = TokenIDConverter(token_list=self.tokens, unk_symbol="<unk>")
        if token_type == "char":
            self.tokenizer = CharTokenizer(non_linguistic_symbols=None, space_symbol="<space>")
        elif token_type == "bpe":
            from espnet2.text.sentencepiece_tokenizer import SentencepiecesTokenizer

            if bpe_model is None or not Path(bpe_model).is_file():
                raise DataDirError(f"{bpe_model}: sentencepiece model not found (token_type bpe)")
            self.tokenizer = SentencepiecesTokenizer(str(bpe_model))
        else:
            raise ValueError(f"token_type must be char or bpe, not {token_type!r}")
        self.token_type = token_type

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return self.converter.tokens2ids(self.tokenizer.text2tokens(text))

    def decode(self, ids) -> str:
        toks = self.converter.ids2tokens([int(i) for i in ids])
        return self.tokenizer.tokens2text(toks)
