"""Bit-exact scalar rules shared by the fake-quant model, the integer reference and the C engine.

Every rounding of the deployed pipeline is defined here once (numpy and torch versions side by
side) and documented in ``docs/quantization.md``:

- ``round_half_away(x)``: round to nearest, ties away from zero, computed without ``x + 0.5``
  (which is wrong in float32 for 0.49999997): ``r = trunc(x); r += sign(x) if |x - r| >= 0.5``.
  ``x - trunc(x)`` is exact in binary floating point, so the result is exact.
- ``quantize_f32(x, s, T)``: ``clamp(round_half_away(x * inv_s), -T, T)`` with
  ``inv_s = float32(1) / float32(s)`` and the product taken in float32 (no FMA, no float64).
- ``quantize_multiplier(m)`` / ``requantize(acc, M, shift, lo, hi)``: src_arm/QUANT.md bit for bit.
- ``dequant_scale(s_in, s_w) = float32(float64(s_in) * float64(s_w))``; a dequantized output is
  ``float32(acc) * dequant_scale`` (two float32 roundings: int32 -> float32, then the product).
- ``multiplier_real(s_in, s_w, s_out) = float64(s_in) * float64(s_w) / float64(s_out)``;
  ``requant_multipliers(s_in, s_w, s_out)``: ``quantize_multiplier`` of it per output channel, the
  one place a layer's (M, shift) are derived (the integer reference and the fake-quant "exact"
  forward both get them from ``intref.int_layer``, which calls it).
- ``quantize_bias(b, s_in, s_w) = clamp_int32(round_half_away(float64(b) / (float64(s_in) * float64(s_w))))``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

INT32_MIN = -(2 ** 31)
INT32_MAX = 2 ** 31 - 1
SCALE_EPS = 1e-8      # the smallest scale: LSQ's forward uses max(s, SCALE_EPS), and so does every integer path


# ---------------------------------------------------------------- rounding / quantizing floats
def round_half_away_np(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero; same dtype as ``x``; exact."""
    x = np.asarray(x)
    r = np.trunc(x)
    return r + np.where(np.abs(x - r) >= 0.5, np.sign(x), 0).astype(x.dtype)


def round_half_away_torch(x: torch.Tensor) -> torch.Tensor:
    r = torch.trunc(x)
    return r + torch.where((x - r).abs() >= 0.5, torch.sign(x), torch.zeros_like(x))


def inv_scale_f32(s) -> np.float32:
    """float32(1) / float32(s), correctly rounded (C: ``1.0f / s``)."""
    return np.float32(1.0) / np.float32(s)


def quantize_f32_np(x: np.ndarray, s, T: int) -> np.ndarray:
    """float32 tensor -> int32 values in [-T, T] (the engine's float -> int8 conversion)."""
    x = np.asarray(x, dtype=np.float32)
    u = x * inv_scale_f32(s)                      # float32 product
    return np.clip(round_half_away_np(u), -T, T).astype(np.int32)


def quantize_f32_torch(x: torch.Tensor, s: torch.Tensor, T: int) -> torch.Tensor:
    """Same as ``quantize_f32_np`` on torch float32 tensors (returns float32 integer values).
    ``s`` may be a scalar tensor or broadcastable (per channel)."""
    inv = torch.ones_like(s, dtype=torch.float32) / s.to(torch.float32)
    return torch.clamp(round_half_away_torch(x.to(torch.float32) * inv), -T, T)


# ---------------------------------------------------------------- requantization (QUANT.md)
def quantize_multiplier(m: float) -> tuple[int, int]:
    """rsq_quantize_multiplier: m ~= M * 2^(-31 - shift), M in [2^30, 2^31), shift in [-31, 31]."""
    if not math.isfinite(m) or m <= 0:
        raise ValueError(f"requantization multiplier must be finite and > 0, got {m!r}")
    q, e = math.frexp(m)
    M = math.floor(q * 2 ** 31 + 0.5)
    if M == 2 ** 31:
        M = 2 ** 30
        e += 1
    shift = -e
    if not -31 <= shift <= 31:
        raise ValueError(f"multiplier {m!r} out of range: shift {shift} not in [-31, 31]")
    return int(M), int(shift)


def requantize_np(acc, M, shift, lo: int, hi: int) -> np.ndarray:
    """Steps 0-3 of QUANT.md, vectorized (int64 arithmetic). ``M``/``shift`` broadcast against
    ``acc`` (per output channel on the last axis for [T][C] arrays)."""
    acc = np.asarray(acc, dtype=np.int64)
    M = np.asarray(M, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.where(shift < 0, -shift, 0)
    a = np.clip(acc << left, INT32_MIN, INT32_MAX)                              # step 0
    a = np.clip((2 * a * M + (1 << 31)) >> 32, INT32_MIN, INT32_MAX)            # step 1
    right = np.where(shift > 0, shift, 0)
    rnd = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 0)
    r = (a + rnd) >> right                                                      # step 2
    return np.clip(r, lo, hi).astype(np.int32)                                  # step 3


def requantize_torch(acc: torch.Tensor, M: torch.Tensor, shift: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """``requantize_np`` on int64 torch tensors (same broadcasting)."""
    acc = acc.to(torch.int64)
    M = M.to(torch.int64)
    shift = shift.to(torch.int64)
    left = torch.clamp(-shift, min=0)
    a = torch.clamp(acc * torch.pow(2, left), INT32_MIN, INT32_MAX)
    a = torch.clamp(torch.div(2 * a * M + (1 << 31), 2 ** 32, rounding_mode="floor"), INT32_MIN, INT32_MAX)
    right = torch.clamp(shift, min=0)
    rnd = torch.where(right > 0, torch.pow(2, torch.clamp(right - 1, min=0)), torch.zeros_like(right))
    r = torch.div(a + rnd, torch.pow(2, right), rounding_mode="floor")
    return torch.clamp(r, lo, hi)


def requantize_scalar(acc: int, M: int, shift: int, lo: int, hi: int) -> int:
    """Plain-Python scalar version (the literal text of QUANT.md), for tests."""
    if shift < 0:
        acc = max(INT32_MIN, min(INT32_MAX, acc * 2 ** (-shift)))
    a = max(INT32_MIN, min(INT32_MAX, (2 * acc * M + 2 ** 31) >> 32))
    r = (a + 2 ** (shift - 1)) >> shift if shift > 0 else a
    return max(lo, min(hi, r))


# ---------------------------------------------------------------- derived constants
def multiplier_real(s_in: float, s_w: float, s_out: float) -> float:
    return float(np.float32(s_in)) * float(np.float32(s_w)) / float(np.float32(s_out))


def requant_multipliers(s_in, s_w, s_out) -> tuple[np.ndarray, np.ndarray]:
    """(M, shift) per output channel (int64 arrays, one entry per element of ``s_w``) of the
    requantization from accumulators at scale s_in*s_w[co] to int8 at s_out (QUANT.md)."""
    s_w = np.asarray(s_w, dtype=np.float32).reshape(-1)
    mult = [quantize_multiplier(multiplier_real(s_in, sw, s_out)) for sw in s_w]
    return np.array([m for m, _ in mult], dtype=np.int64), np.array([sh for _, sh in mult], dtype=np.int64)


def dequant_scale(s_in, s_w) -> np.ndarray:
    """float32(float64(s_in) * float64(s_w)) (per channel if ``s_w`` is a vector)."""
    return (np.float64(np.float32(s_in)) * np.asarray(s_w, dtype=np.float32).astype(np.float64)).astype(np.float32)


def quantize_bias(b, s_in, s_w) -> np.ndarray:
    sb = np.float64(np.float32(s_in)) * np.asarray(s_w, dtype=np.float32).astype(np.float64)
    q = round_half_away_np(np.asarray(b, dtype=np.float32).astype(np.float64) / sb)
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int64)
