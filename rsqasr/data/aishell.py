"""AISHELL-1 data preparation (works on the real corpus and on the synthesized mini tree).

Input layout (as OpenSLR 33 unpacks)::

    <audio_dir>/{train,dev,test}/<speaker>/<utt>.wav
    <transcript>: "<utt> word word ..." per line

Output: one Kaldi data dir per split with ``wav.scp``, ``text`` (spaces removed: character
level, as ESPnet's aishell recipe), ``utt2spk``, ``spk2utt``. Utterances with audio but no
transcript, and transcript lines with no audio, are dropped with a warning and counted (as
Kaldi's fix_data_dir.sh would); audio in the wrong format and transcript lines with no text
are errors that name the file (and line).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import soundfile

from rsqasr.data.datadir import DataDirError, utt2spk_to_spk2utt, write_kv

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


@dataclass
class PrepStats:
    utts: dict[str, int]
    speakers: dict[str, int]
    no_transcript: int  # audio files dropped: no transcript line
    no_audio: int  # transcript lines dropped: no audio in any split


def read_transcript(path: Path) -> dict[str, str]:
    """``utt w1 w2 ...`` -> {utt: 'w1w2...'}; a line with no text or a repeated id is an error."""
    out: dict[str, str] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DataDirError(f"{path}: cannot open transcript: {e.strerror}") from e
    with f:
        lineno = 0
        try:
            for lineno, line in enumerate(f, 1):
                _transcript_line(path, lineno, line, out)
        except UnicodeDecodeError as e:
            raise DataDirError(f"{path}: not UTF-8 text near line {lineno + 1} ({e.reason})") from e
    return out


def _transcript_line(path: Path, lineno: int, line: str, out: dict[str, str]) -> None:
    parts = line.split()
    if parts:   # blank lines carry nothing; AISHELL has none
        if len(parts) == 1:
            raise DataDirError(f"{path}:{lineno}: utterance '{parts[0]}' has no text")
        if parts[0] in out:
            raise DataDirError(f"{path}:{lineno}: duplicate utterance id '{parts[0]}'")
        out[parts[0]] = "".join(parts[1:])


def check_wav(path: Path, sample_rate: int = 16000) -> None:
    """Raise DataDirError unless ``path`` is a non-empty 16-bit mono wav at ``sample_rate``."""
    try:
        info = soundfile.info(str(path))
    except Exception as e:  # noqa: BLE001 - libsndfile raises several types
        raise DataDirError(f"{path}: cannot read audio: {e}") from e
    if info.samplerate != sample_rate or info.channels != 1 or info.subtype != "PCM_16":
        raise DataDirError(f"{path}: {info.samplerate} Hz, {info.channels} channel(s), {info.subtype}; "
                           f"expected {sample_rate} Hz, 1 channel, PCM_16")
    if info.frames == 0:
        raise DataDirError(f"{path}: empty audio (0 samples)")


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished ``tmp`` dir onto ``final``; an old ``final`` is removed only afterwards."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def prepare_aishell(audio_dir: str | os.PathLike, transcript: str | os.PathLike, data_dir: str | os.PathLike,
                    splits: tuple[str, ...] = SPLITS, sample_rate: int = 16000) -> PrepStats:
    """Write ``<data_dir>/<split>/`` for every split. Nothing is written unless every check passes."""
    audio_dir, transcript, data_dir = Path(audio_dir), Path(transcript), Path(data_dir)
    if not audio_dir.is_dir():
        raise DataDirError(f"{audio_dir}: no such audio directory")
    texts = read_transcript(transcript)
    used: set[str] = set()
    tables: dict[str, dict[str, dict[str, str]]] = {}
    no_transcript = 0
    for split in splits:
        split_dir = audio_dir / split
        if not split_dir.is_dir():
            raise DataDirError(f"{split_dir}: missing (expected {audio_dir}/<split>/<speaker>/<utt>.wav)")
        wav_scp, text, utt2spk = {}, {}, {}
        for wav in sorted(split_dir.glob("*/*.wav")):
            utt, spk = wav.stem, wav.parent.name
            if utt in wav_scp:
                raise DataDirError(f"{wav}: utterance id '{utt}' appears twice in {split_dir}")
            if utt not in texts:
                no_transcript += 1
                logger.warning("%s: no transcript for this audio in %s; dropped", wav, transcript)
                continue
            check_wav(wav, sample_rate)
            wav_scp[utt] = str(wav.resolve())
            text[utt] = texts[utt]
            utt2spk[utt] = spk
            used.add(utt)
        if not wav_scp:
            raise DataDirError(f"{split_dir}: no usable utterances (audio with a transcript)")
        tables[split] = {"wav.scp": wav_scp, "text": text, "utt2spk": utt2spk}
    no_audio = len(set(texts) - used)
    if no_audio:
        logger.warning("%s: %d transcript lines have no audio in %s; dropped", transcript, no_audio, audio_dir)
    if no_transcript:
        logger.warning("%s: %d audio files have no transcript; dropped", audio_dir, no_transcript)

    data_dir.mkdir(parents=True, exist_ok=True)
    for split, files in tables.items():
        tmp = data_dir / f".{split}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        for name, table in files.items():
            write_kv(tmp / name, table)
        write_kv(tmp / "spk2utt", utt2spk_to_spk2utt(files["utt2spk"]))
        _replace_dir(tmp, data_dir / split)
    return PrepStats(utts={s: len(t["utt2spk"]) for s, t in tables.items()},
                     speakers={s: len(set(t["utt2spk"].values())) for s, t in tables.items()},
                     no_transcript=no_transcript, no_audio=no_audio)
