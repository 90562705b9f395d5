"""Reading the audio a ``wav.scp`` entry points to, with the checks the recipe relies on.

An entry is a path or a Kaldi pipe command ending in ``|`` (e.g. the ``sox ... speed 0.9 |``
lines that speed perturbation writes). Audio must be 16-bit PCM, mono, at the expected rate.
"""

from __future__ import annotations

import io
import os
import subprocess

import numpy as np
import soundfile


class AudioError(ValueError):
    """Audio is missing, unreadable or in the wrong format; the message names where."""


def read_wav_entry(entry: str, where: str, sample_rate: int = 16000) -> np.ndarray:
    """Load the int16 samples of one ``wav.scp`` entry.

    ``where`` names the entry's location for error messages (e.g. ``data/train/wav.scp:12``).
    """
    entry = entry.strip()
    if entry.endswith("|"):
        cmd = entry[:-1]
        proc = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise AudioError(f"{where}: command failed (exit {proc.returncode}): {cmd}\n"
                             f"{proc.stderr.decode(errors='replace').strip()}")
        source: object = io.BytesIO(proc.stdout)
        name = f"output of '{cmd}'"
    else:
        if not os.path.exists(entry):
            raise AudioError(f"{where}: audio file not found: {entry}")
        if not os.path.isfile(entry) or not os.access(entry, os.R_OK):
            raise AudioError(f"{where}: audio file not readable: {entry}")
        source = entry
        name = entry
    try:
        with soundfile.SoundFile(source) as f:
            rate, channels, subtype, frames = f.samplerate, f.channels, f.subtype, f.frames
            data = f.read(dtype="int16", always_2d=False)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{where}: cannot read audio {name}: {e}") from e
    if rate != sample_rate or channels != 1 or subtype != "PCM_16":
        raise AudioError(f"{where}: {name} is {rate} Hz, {channels} channel(s), {subtype}; "
                         f"expected {sample_rate} Hz, 1 channel, PCM_16")
    if frames == 0:
        raise AudioError(f"{where}: {name} has no samples")
    return np.asarray(data, dtype=np.int16)


def wav_truncation(entry: str) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of the data chunk of a RIFF/WAVE file whose data chunk is cut
    short (the header promises more than the file holds; libsndfile then reads what is there
    without a word), else None. Pipes and non-RIFF files are not checked."""
    entry = entry.strip()
    if entry.endswith("|") or not os.path.isfile(entry):
        return None
    size = os.path.getsize(entry)
    with open(entry, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            cid, n = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if cid == b"data":
                present = size - (pos + 8)
                if n == 0xFFFFFFFF or n <= present:   # 0xFFFFFFFF: a streamed wav of unknown length
                    return None
                return n, present
            pos += 8 + n + (n & 1)
    return None
