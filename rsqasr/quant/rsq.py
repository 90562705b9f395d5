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
  consumer's scale or float32 dequantization, with the integer weights, bias, multipliers and
  shifts of ``intref.int_layer`` (the integer reference's own). Bit-identical to
  ``rsqasr.quant.intref`` up to the FP32 classifier (whose float summation order differs between
  BLAS libraries).

The scales live in the LSQ parameters; ``get_scales(net)`` reads them out as the mapping
``calibrate`` produces (``rsqasr.quant.scales``), which is what ``IntModel.from_scales`` takes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rsqasr.quant.intref import IntLayer, int_layer
from rsqasr.quant.lsq import LSQQuantizer
from rsqasr.quant.numerics import quantize_f32_torch, requantize_torch, round_half_away_torch
from rsqasr.quant.plan import LayerPlan, QuantPlan, requant_range
from rsqasr.quant.scales import act_scale, check_scales, layer_scales

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

    def _fake_bias(self):
        if self.bias is None:
            return None
        sb = (self.act_quant.effective_scale() * self.weight_quant.effective_scale().flatten()).detach()
        return self.bias + (round_half_away_torch(self.bias / sb) * sb - self.bias).detach()

    def scales(self) -> dict:
        """This layer's entry of the scales mapping: ``{"act": s_in, "weight": s_w | [s_w per channel]}``
        (the learned parameters, as ``calibrate`` gives them and a quant.json stores them)."""
        return {"act": self.act_quant.scale_list(), "weight": self.weight_quant.scale_list()}

    def int_layer(self) -> IntLayer:
        """The layer as the engine stores it, from its current scales (and, for a requantized
        output, its consumer's): ``intref.int_layer``, as the integer reference builds it."""
        s_in, s_w = layer_scales(self.plan, self.scales())
        requant = None
        if self.plan.out == "requant":
            cons = self._consumer[0]
            requant = (act_scale(cons.act_quant.scale_list()), *requant_range(self.plan, cons.plan))
        return int_layer(self.plan, self.weight, self.bias, s_in, s_w, requant)

    @staticmethod
    def _exact_out(il: IntLayer, acc: torch.Tensor, ch_dim: int) -> torch.Tensor:
        """acc (int64, channel axis ch_dim) -> float32 output per the plan (requant or dequant)."""
        shape = [1] * acc.dim()
        shape[ch_dim] = -1
        dev = acc.device
        if il.plan.out == "requant":
            q = requantize_torch(acc, torch.from_numpy(il.M).reshape(shape).to(dev),
                                 torch.from_numpy(il.shift).reshape(shape).to(dev), il.lo, il.hi)
            return q.to(torch.float32) * torch.tensor(il.s_out, device=dev)
        ds = torch.from_numpy(il.deq).reshape(shape).to(dev)
        return acc.to(torch.float32) * ds

    def _set_frame_mask(self, x: torch.Tensor, time_dim: int) -> None:
        lens = self._frames.get(x.shape[time_dim])
        if lens is None or lens.shape[0] != x.shape[0]:
            self.act_quant.frame_mask = None
            return
        mask = (torch.arange(x.shape[time_dim], device=x.device)[None, :] < lens[:, None].to(x.device)).to(x.dtype)
        self.act_quant.frame_mask = mask.unsqueeze(1) if time_dim == 2 else mask.unsqueeze(2)

    def _exact_input(self, x: torch.Tensor, il: IntLayer) -> torch.Tensor:
        return quantize_f32_torch(x, torch.tensor(il.s_in, device=x.device), self.plan.act_T).double()


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
        il = self.int_layer()
        acc = F.conv1d(self._exact_input(x, il), torch.from_numpy(il.w).double().to(x.device),
                       torch.from_numpy(il.b).double().to(x.device), self.stride, self.padding, self.dilation,
                       self.groups)
        return self._exact_out(il, torch.round(acc).to(torch.int64), 1)


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
        il = self.int_layer()
        acc = F.linear(self._exact_input(x, il), torch.from_numpy(il.w).double().to(x.device),
                       torch.from_numpy(il.b).double().to(x.device))
        return self._exact_out(il, torch.round(acc).to(torch.int64), acc.dim() - 1)


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
    """The scales a quantized ``net`` holds, as ``{layer: {"act", "weight"}}``: what RSQ learned
    (or what ``quantize_model`` was given), in the mapping ``IntModel.from_scales`` and a quant.json take."""
    return {n: m.scales() for n, m in quant_modules(net).items()}
