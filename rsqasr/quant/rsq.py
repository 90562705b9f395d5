"""RSQ: LSQ fake quantization with range scaling (paper section 2) wrapped around a model from outside.

    plan = make_plan(net, kind="wino")
    scales = calibrate(net, plan, batches)          # rsqasr.quant.calibrate (KL, TensorRT)
    quantize_model(net, plan, scales)               # in place: nn.Conv1d/nn.Linear -> QConv1d/QLinear
    loss = ctc_loss + beta * quant_noise_loss(net)  # beta = 0: RSQ-dagger
    optimizer.step(); constrain_scales_(net)        # keep every scale >= eps

Each quantized layer quantizes its INPUT activation (learned scale, the plan's range: [-63, 63]
for Winograd layers, [-127, 127] for int8 ones) and its WEIGHT (range-scaled [-42, 42] for
Winograd layers, [-127, 127] otherwise), then runs the float conv on the fake-quantized values.
These are exactly the points where the integer engine converts to int8 (docs/quantization.md).
The wrapped modules keep the original parameter objects and names (``weight``, ``bias``), so
FP32 checkpoints load into a quantized model with ``strict=False`` and optimizers stay valid;
the scales are ``<layer>.act_quant.scale`` and ``<layer>.weight_quant.scale``.

Two forward modes (``set_mode(net, mode)``):
- ``"fake"`` (default, training): float conv of Q(x), Q(w) plus the float bias rounded to its
  int32 grid (straight-through). Differs from the engine only where the engine requantizes an
  output (single rounding of the float conv output here, QUANT.md's double rounding there).
- ``"exact"`` (evaluation, export checks): the integer pipeline simulated exactly in torch:
  int accumulators (float64 conv of integers, exact), int32 bias, QUANT.md requantization to the
  consumer's scale or float32 dequantization. Bit-identical to ``rsqasr.quant.intref`` up to the
  FP32 classifier (whose float summation order differs between BLAS libraries).
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rsqasr.quant.lsq import LSQQuantizer
from rsqasr.quant.numerics import (dequant_scale, multiplier_real, quantize_bias, quantize_f32_torch,
                                   quantize_multiplier, requantize_torch, round_half_away_torch)
from rsqasr.quant.plan import LayerPlan, QuantPlan

MODES = ("fake", "exact")


class _QMixin:
    """Shared by QConv1d and QLinear: quantizers, bias handling, the exact integer path."""

    def _init_quant(self, lp: LayerPlan, w_channels: int, w_ndim: int, x_ndim: int):
        self.plan = lp
        self.act_quant = LSQQuantizer(lp.act_T, ndim=x_ndim)
        self.weight_quant = LSQQuantizer(lp.w_T, channels=w_channels if lp.per_channel else 0,
                                         ch_axis=0, ndim=w_ndim)
        self.mode = "fake"
        self._consumer: list = []          # [module] whose act_quant scale is our requant target
        self._frames: dict = {}            # padded length -> valid lengths of the net's current batch

    def _weight_scale_vec(self) -> np.ndarray:
        s = self.weight_quant.effective_scale().detach().float().flatten().numpy()
        return np.broadcast_to(s, (self.plan.cout,)).astype(np.float32)

    def _act_scale(self) -> float:
        return float(self.act_quant.effective_scale().detach().float())

    def _fake_bias(self):
        if self.bias is None:
            return None
        sb = (self.act_quant.effective_scale() * self.weight_quant.effective_scale().flatten()).detach()
        return self.bias + (round_half_away_torch(self.bias / sb) * sb - self.bias).detach()

    def int_params(self) -> dict:
        """Integer weight, int32 bias, input scale and weight scales, as the engine stores them."""
        s_in = np.float32(self._act_scale())
        s_w = self._weight_scale_vec()
        w = self.weight.detach().float().cpu()
        sw_t = torch.from_numpy(s_w.copy()).reshape([-1] + [1] * (w.dim() - 1))
        wq = quantize_f32_torch(w, sw_t, self.plan.w_T).to(torch.int64).numpy()
        b = (quantize_bias(self.bias.detach().float().cpu().numpy(), s_in, s_w) if self.bias is not None
             else np.zeros(self.plan.cout, dtype=np.int64))
        return {"s_in": s_in, "s_w": s_w, "w": wq, "b": b}

    def _exact_out(self, acc: torch.Tensor, ch_dim: int) -> torch.Tensor:
        """acc (int64, channel axis ch_dim) -> float32 output per the plan (requant or dequant)."""
        p = self.int_params()
        shape = [1] * acc.dim()
        shape[ch_dim] = -1
        if self.plan.out == "requant":
            cons = self._consumer[0]
            s_out = np.float32(cons._act_scale())
            Ms, shs = zip(*(quantize_multiplier(multiplier_real(p["s_in"], sw, s_out)) for sw in p["s_w"]))
            lo, hi = (0 if self.plan.out_relu else -cons.plan.act_T), cons.plan.act_T
            dev = acc.device
            q = requantize_torch(acc, torch.tensor(Ms, device=dev).reshape(shape),
                                 torch.tensor(shs, device=dev).reshape(shape), lo, hi)
            return q.to(torch.float32) * torch.tensor(s_out, device=dev)
        ds = torch.from_numpy(dequant_scale(p["s_in"], p["s_w"])).reshape(shape).to(acc.device)
        return acc.to(torch.float32) * ds

    def _set_frame_mask(self, x: torch.Tensor, time_dim: int) -> None:
        lens = self._frames.get(x.shape[time_dim])
        if lens is None or lens.shape[0] != x.shape[0]:
            self.act_quant.frame_mask = None
            return
        mask = (torch.arange(x.shape[time_dim], device=x.device)[None, :] < lens[:, None].to(x.device)).to(x.dtype)
        self.act_quant.frame_mask = mask.unsqueeze(1) if time_dim == 2 else mask.unsqueeze(2)

    def _exact_input(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_f32_torch(x, self.act_quant.effective_scale().detach(), self.plan.act_T).double()


class QConv1d(_QMixin, nn.Conv1d):
    """Fake-quantized ``nn.Conv1d`` (same parameters, same padding semantics)."""

    @classmethod
    def from_float(cls, conv: nn.Conv1d, lp: LayerPlan) -> "QConv1d":
        q = cls.__new__(cls)
        nn.Module.__init__(q)
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                     "transposed", "output_padding", "groups", "padding_mode", "_reversed_padding_repeated_twice"):
            setattr(q, attr, getattr(conv, attr))
        q.weight = conv.weight
        q.bias = conv.bias
        q._init_quant(lp, conv.out_channels, 3, 3)
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "exact":
            return self._forward_exact(x)
        self._set_frame_mask(x, 2)
        xq = self.act_quant(x)
        wq = self.weight_quant(self.weight)
        return F.conv1d(xq, wq, self._fake_bias(), self.stride, self.padding, self.dilation, self.groups)

    @torch.no_grad()
    def _forward_exact(self, x):
        p = self.int_params()
        acc = F.conv1d(self._exact_input(x), torch.from_numpy(p["w"]).double().to(x.device),
                       torch.from_numpy(p["b"]).double().to(x.device), self.stride, self.padding, self.dilation, self.groups)
        return self._exact_out(torch.round(acc).to(torch.int64), 1)


class QLinear(_QMixin, nn.Linear):
    """Fake-quantized ``nn.Linear`` (the classifier when the plan quantizes it)."""

    @classmethod
    def from_float(cls, lin: nn.Linear, lp: LayerPlan) -> "QLinear":
        q = cls.__new__(cls)
        nn.Module.__init__(q)
        q.in_features, q.out_features = lin.in_features, lin.out_features
        q.weight = lin.weight
        q.bias = lin.bias
        q._init_quant(lp, lin.out_features, 2, 0)
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "exact":
            return self._forward_exact(x)
        if x.dim() == 3:
            self._set_frame_mask(x, 1)
        return F.linear(self.act_quant(x), self.weight_quant(self.weight), self._fake_bias())

    @torch.no_grad()
    def _forward_exact(self, x):
        p = self.int_params()
        acc = F.linear(self._exact_input(x), torch.from_numpy(p["w"]).double().to(x.device),
                       torch.from_numpy(p["b"]).double().to(x.device))
        return self._exact_out(torch.round(acc).to(torch.int64), acc.dim() - 1)


QUANT_MODULES = (QConv1d, QLinear)


# ------------------------------------------------------------------ model-level API
def _set_submodule(net: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, child, new)


def quantize_model(net: nn.Module, plan: QuantPlan, scales: dict | None = None) -> nn.Module:
    """Replace the plan's quantized layers of ``net`` (in place) by fake-quant wrappers.

    ``scales``: ``{layer: {"act": s_in, "weight": s_w or [s_w per channel]}}`` (from
    ``calibrate``); missing weight scales default to max|w| / T, missing activation scales to 1.
    The plan is kept as ``net.quant_plan``.
    """
    from rsqasr.models.common import fold_batchnorm

    fold_batchnorm(net)  # as make_plan did before tracing
    if scales is not None:
        check_scales(plan, scales)
    scales = scales or {}
    wrapped = {}
    for lp in plan.quantized_layers():
        m = net.get_submodule(lp.name)
        if isinstance(m, QUANT_MODULES):
            raise ValueError(f"{lp.name} is already quantized")
        if lp.op == "conv" and type(m) is nn.Conv1d:
            q = QConv1d.from_float(m, lp)
        elif lp.op == "linear" and type(m) is nn.Linear:
            q = QLinear.from_float(m, lp)
        else:
            raise ValueError(f"{lp.name}: plan says {lp.op} but the module is {type(m).__name__}")
        sc = scales.get(lp.name, {})
        w = m.weight.detach()
        if "weight" in sc:
            q.weight_quant.set_scale(sc["weight"])
        else:
            amax = (w.abs().flatten(1).amax(1) if lp.per_channel else w.abs().max()).clamp(min=1e-8)
            q.weight_quant.set_scale(amax / lp.w_T)
        q.act_quant.set_scale(sc.get("act", 1.0))
        q.to(w.device)
        _set_submodule(net, lp.name, q)
        wrapped[lp.name] = q
    for lp in plan.quantized_layers():
        if lp.out == "requant":
            wrapped[lp.name]._consumer = [wrapped[lp.out_consumer]]
    # valid lengths at every frame rate of the batch, for the noise loss (padded frames of k=1
    # layers are not zeroed by the model, so they would enter its statistics)
    frames: dict = {}
    for q in wrapped.values():
        q._frames = frames
    if hasattr(net, "specs"):
        net.register_forward_pre_hook(_frame_lengths_hook(frames))
    net.quant_plan = plan
    return net


def _frame_lengths_hook(frames: dict):
    def hook(net, args):
        frames.clear()
        if len(args) < 2 or not isinstance(args[1], torch.Tensor):
            return
        t, lens = args[0].shape[1], args[1]
        frames[t] = lens
        for spec in net.specs:
            t, lens = spec.out_len(t), spec.out_len(lens)
            frames.setdefault(t, lens)
    return hook


def _positive_finite(v, where: str) -> None:
    vals = v if isinstance(v, list) else [v]
    if not vals or not all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in vals):
        raise ValueError(f"{where}: a scale must be a number (or a list of numbers per channel), got {v!r}")
    bad = [x for x in vals if not (np.isfinite(x) and x > 0)]
    if bad:
        raise ValueError(f"{where}: scales must be finite and > 0, got {bad[0]!r}")


def check_scales(plan: QuantPlan, scales, source: str = "scales") -> None:
    """Refuse scales that do not fit ``plan``: every quantized layer needs a positive finite
    activation scale and weight scale(s) (one per output channel for a per-channel layer), and
    nothing else may be there. Messages name ``source`` and the layer."""
    if not isinstance(scales, dict):
        raise ValueError(f"{source}: scales must be a mapping of layer name -> {{act, weight}}, "
                         f"got {type(scales).__name__}")
    want = {lp.name: lp for lp in plan.quantized_layers()}
    missing = [n for n in want if n not in scales]
    extra = [n for n in scales if n not in want]
    if missing:
        raise ValueError(f"{source}: no scales for layer(s) {', '.join(missing)} of the plan")
    if extra:
        raise ValueError(f"{source}: scales for layer(s) {', '.join(extra)} that the plan does not quantize")
    for name, lp in want.items():
        sc = scales[name]
        if not isinstance(sc, dict) or "act" not in sc or "weight" not in sc:
            raise ValueError(f"{source}: layer {name}: needs 'act' and 'weight' scales, got {sc!r}")
        _positive_finite(sc["act"], f"{source}: layer {name}: act")
        _positive_finite(sc["weight"], f"{source}: layer {name}: weight")
        if isinstance(sc["act"], list):
            raise ValueError(f"{source}: layer {name}: the activation scale is per tensor, got a list")
        n_w = len(sc["weight"]) if isinstance(sc["weight"], list) else 1
        if n_w not in (1, lp.cout) or (lp.per_channel is False and n_w != 1):
            raise ValueError(f"{source}: layer {name}: {n_w} weight scales for {lp.cout} output channels "
                             f"({'per channel' if lp.per_channel else 'per tensor'})")


def quant_modules(net: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in net.named_modules() if isinstance(m, QUANT_MODULES)}


NOISE_NORMS = ("steps", "none")


def quant_noise_loss(net: nn.Module, norm: str = "none") -> torch.Tensor:
    """The quantization-noise loss over every quantized tensor (each layer's input activation and
    weight) of the last forward, padded frames excluded.

    ``norm="none"``: the sum of MSE(Q(v), v) (paper Eq. 7; gradients Eq. 8-9, times LSQ's g on s).
    ``norm="steps"``: the mean over tensors of MSE(Q(v), v) / s^2, each tensor's noise in units of
    its own squared step (s held constant). The plain sum is dominated by the widest tensors (the
    DFSMN memory stream's values, and so its errors, are ~100x those of the front), so it
    optimizes those few and ignores the rest; in steps every tensor counts alike, rounding noise
    alone is ~1/12 for each, and beta means the same whatever the number of layers.
    """
    if norm not in NOISE_NORMS:
        raise ValueError(f"noise loss norm must be one of {NOISE_NORMS}, got {norm!r}")
    terms = []
    for m in net.modules():
        if isinstance(m, LSQQuantizer):
            l = m.noise_loss(in_steps=norm == "steps")
            if l is not None:
                terms.append(l)
    if not terms:
        p = next(net.parameters())
        return torch.zeros((), device=p.device, dtype=p.dtype)
    total = torch.stack(terms).sum()
    return total / len(terms) if norm == "steps" else total


def set_mode(net: nn.Module, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    for m in quant_modules(net).values():
        m.mode = mode


def constrain_scales_(net: nn.Module) -> None:
    """Project every scale back to >= eps (call after optimizer.step())."""
    for m in net.modules():
        if isinstance(m, LSQQuantizer):
            m.constrain_()


def get_scales(net: nn.Module) -> dict:
    return {n: {"act": m.act_quant.scale_list(), "weight": m.weight_quant.scale_list()}
            for n, m in quant_modules(net).items()}


def save_quant(path: str | Path, plan: QuantPlan, scales: dict) -> None:
    """One JSON file holding the plan (with its graph) and the scales."""
    from rsqasr.utils.fileio import atomic_write_text

    atomic_write_text(path, json.dumps({"plan": plan.to_dict(), "scales": scales}, indent=1) + "\n")


def load_quant(path: str | Path) -> tuple[QuantPlan, dict]:
    """The plan and scales of a quant.json; a malformed file is a ValueError naming it."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read quantization file: {e}") from e
    if not isinstance(d, dict) or "plan" not in d or "scales" not in d:
        raise ValueError(f"{path}: not a quantization file (a JSON object with 'plan' and 'scales')")
    try:
        plan = QuantPlan.from_dict(d["plan"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: bad plan: {e}") from e
    check_scales(plan, d["scales"], str(path))
    return plan, d["scales"]
