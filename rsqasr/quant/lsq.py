"""LSQ fake quantization with the paper's conventions (Eq. 4-6) and the engine's rounding.

    Q(v) = s * round(clip(v/s, -Ts, Ts))

- Forward: ``u = v * float32(1/s)`` (the engine's float -> int8 conversion, see
  ``rsqasr.quant.numerics``), clipped to [-Ts, Ts] and rounded half away from zero, times s.
  Clip-then-round equals round-then-clamp for an integer Ts, so the forward value equals the
  integer reference's ``s * quantize_f32(v, s, Ts)`` bit for bit.
- Backward (Eq. 5-6, range test on v/s, i.e. the paper's clip-then-round convention):
  dQ/dv = 1 if -Ts <= v/s <= Ts else 0;
  dQ/ds = -Ts (v/s < -Ts), round(v/s) - v/s (inside), Ts (v/s > Ts);
  the scale's gradient is multiplied by LSQ's g = 1/sqrt(numel * Ts) (Esser et al.), where numel
  is the number of elements quantized with that scale (the whole tensor for a per-tensor scale,
  numel / C for a per-channel scale).
  ``torch._fake_quantize_learnable_per_tensor_affine`` rounds before its range test, so its
  scale gradient differs for Ts < |v/s| < Ts + 0.5 (tested in test/test_quant.py).
- The scale is used as ``max(s, eps)`` in the forward; ``LSQQuantizer.constrain_()`` projects the
  parameter back to >= eps after an optimizer step (``rsqasr.quant.rsq.constrain_scales_``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rsqasr.quant.numerics import SCALE_EPS, round_half_away_torch

EPS = SCALE_EPS


class LSQFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v: torch.Tensor, s: torch.Tensor, Ts: int, g: float) -> torch.Tensor:
        inv = torch.ones_like(s) / s
        u = v * inv
        r = round_half_away_torch(torch.clamp(u, -Ts, Ts))
        ctx.save_for_backward(v, s)
        ctx.Ts, ctx.g = Ts, g
        return r * s

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        v, s = ctx.saved_tensors
        Ts, g = ctx.Ts, ctx.g
        u = v / s
        lower, upper = u < -Ts, u > Ts
        inside = ~(lower | upper)
        grad_v = grad * inside.to(grad.dtype)
        ds = torch.where(lower, torch.full_like(u, -float(Ts)),
                         torch.where(upper, torch.full_like(u, float(Ts)), round_half_away_torch(u) - u))
        gs = grad * ds * g
        if s.dim() == 0 or s.numel() == 1:
            grad_s = gs.sum().reshape(s.shape)
        else:   # per-channel: s broadcasts against v; sum over the broadcast dims
            dims = [i for i in range(gs.dim()) if s.shape[i] == 1]
            grad_s = gs.sum(dim=dims, keepdim=True)
        return grad_v, grad_s, None, None


def lsq_quantize(v: torch.Tensor, s: torch.Tensor, Ts: int, g: float | None = None) -> torch.Tensor:
    """Q(v) with the LSQ gradients; ``g`` defaults to 1/sqrt(numel_per_scale * Ts)."""
    if g is None:
        g = 1.0 / math.sqrt(max(1, v.numel() // max(1, s.numel())) * Ts)
    return LSQFunction.apply(v, s, Ts, g)


class LSQQuantizer(nn.Module):
    """A learnable symmetric scale for one tensor (per tensor, or per channel along ``ch_axis``).

    ``forward(v)`` returns Q(v) and remembers (Q(v), v) for ``noise_loss()`` (Eq. 7) when
    ``record`` is on (default); the record is replaced at each forward.
    """

    def __init__(self, T: int, channels: int = 0, ch_axis: int = 0, ndim: int = 3, init: float = 1.0):
        super().__init__()
        self.T = int(T)
        self.ch_axis = ch_axis
        self.ndim = ndim
        shape = [1] * ndim
        if channels:
            shape[ch_axis] = channels
            self.scale = nn.Parameter(torch.full(shape, float(init)))
        else:
            self.scale = nn.Parameter(torch.tensor(float(init)))
        self.record = True
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        # (B, 1, T) or (B, T, 1) mask of valid frames of the next forward's input, set by the
        # wrapping layer (rsqasr.quant.rsq) so padded frames stay out of the noise loss
        self.frame_mask: torch.Tensor | None = None

    @property
    def per_channel(self) -> bool:
        return self.scale.dim() > 0

    def effective_scale(self) -> torch.Tensor:
        return torch.clamp(self.scale, min=EPS)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        q = lsq_quantize(v, self.effective_scale(), self.T)
        self.last = (q, v) if self.record else None
        return q

    def noise_loss(self, in_steps: bool = False) -> torch.Tensor | None:
        """MSE(Q(v), v) of the last forward (Eq. 7), over the valid frames when a ``frame_mask``
        was given. ``in_steps``: in units of the squared quantization step, (Q(v) - v)^2 / s^2
        with s held constant (per channel for a per-channel scale); pure rounding noise gives
        about 1/12 whatever the tensor's range, clipping adds to it."""
        if self.last is None:
            return None
        q, v = self.last
        d2 = (q - v) ** 2
        if in_steps:
            d2 = d2 / self.effective_scale().detach() ** 2
        mask = self.frame_mask
        if mask is None or mask.shape[0] != d2.shape[0]:
            return torch.mean(d2)
        per_frame = d2.numel() // (mask.shape[0] * max(mask.shape[1], mask.shape[2]))
        return (d2 * mask).sum() / (mask.sum().clamp(min=1) * per_frame)

    @torch.no_grad()
    def set_scale(self, s) -> None:
        s = torch.as_tensor(s, dtype=torch.float32)
        self.scale.copy_(s.reshape(self.scale.shape) if s.numel() == self.scale.numel() else s.expand_as(self.scale))

    @torch.no_grad()
    def constrain_(self) -> None:
        self.scale.clamp_(min=EPS)

    def scale_list(self):
        s = self.scale.detach().float().flatten().tolist()
        return s if self.per_channel else s[0]

    def extra_repr(self) -> str:
        return f"T={self.T}, per_channel={self.per_channel}"
