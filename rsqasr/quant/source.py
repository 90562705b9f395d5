"""Where a network's quantization comes from: the one PTQ-or-RSQ choice of decoding and export.

    q = resolve_quantization(net, variant="wino", quant_json="exp/x/ptq_wino/quant.json")
    im = q.intmodel(net)          # IntModel.from_scales(net, q.plan, q.scales)
    ref = q.torch_net(net)        # the PyTorch model im reproduces ("exact" fake-quant mode)

- An RSQ experiment (its config has a ``quant`` section, so ``rsqasr.inference.load_asr`` wrapped
  its layers and the checkpoint filled in the scales) brings its own plan and learned scales.
- An FP32 experiment plus a quant.json (``rsqasr.bin.quantize``) is PTQ: that file's plan and
  calibrated scales.
- An FP32 experiment alone is FP32: ``variant="none"`` gives it the FP32 plan (every layer fp32,
  what the FP32 export writes); without a variant (decoding) there is nothing to quantize.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from rsqasr.quant.intref import IntModel
from rsqasr.quant.plan import QuantPlan, make_plan
from rsqasr.quant.rsq import get_scales, quantize_model, set_mode
from rsqasr.quant.scales import load_quant

VARIANTS = ("none", "int8_gemm", "wino")      # "none": FP32; the others are plan kinds
SOURCES = ("fp32", "ptq", "rsq")


@dataclass
class Quantization:
    """A plan and the scales to go with it (``{}`` for the FP32 plan), and where they came from."""
    plan: QuantPlan
    scales: dict
    source: str                   # one of SOURCES

    def intmodel(self, net: nn.Module, debug: bool = False) -> IntModel:
        """The integer model (``IntModel.from_scales``; folds ``net``'s BatchNorm in place)."""
        return IntModel.from_scales(net, self.plan, self.scales, debug)

    def torch_net(self, net: nn.Module, mode: str = "exact", inplace: bool = False) -> nn.Module:
        """The PyTorch model computing what ``intmodel`` does, in eval mode: ``net`` itself for RSQ
        (in fake-quant ``mode``) and FP32; for PTQ ``quantize_model`` of a deep copy of ``net`` on
        the CPU (of ``net`` itself with ``inplace``) in ``mode``."""
        if self.source == "ptq":
            net = quantize_model(net if inplace else copy.deepcopy(net).cpu(), self.plan, self.scales)
        if self.source != "fp32":
            set_mode(net, mode)
        return net.eval()


def resolve_quantization(net: nn.Module, variant: str | None = None,
                         quant_json: str | Path | None = None) -> Quantization | None:
    """The plan and scales ``net`` is to run with, checked against what was asked for.

    ``variant``: ``None`` (decoding: whatever the experiment is; None for an FP32 one without
    ``quant_json``), ``"none"`` (the FP32 plan of an FP32 experiment), ``"int8_gemm"`` or
    ``"wino"`` (that plan kind, from the RSQ experiment itself or from ``quant_json``).
    Inconsistent requests (a quant.json for an RSQ experiment, a plan kind the experiment or file
    does not have) are a ValueError saying which."""
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"--quant must be one of {VARIANTS}, got {variant!r}")
    rsq = hasattr(net, "quant_plan")
    if variant == "none":
        if rsq:
            raise ValueError("--quant none exports an FP32 experiment; this one is quantization-aware (RSQ)")
        return Quantization(make_plan(net, kind="fp32"), {}, "fp32")
    if rsq:
        if quant_json:
            raise ValueError(f"{quant_json}: a PTQ plan and scales are for FP32 experiments; this one is "
                             f"quantization-aware (RSQ) and has its own")
        if variant is not None and net.quant_plan.kind != variant:
            raise ValueError(f"this RSQ experiment has a {net.quant_plan.kind!r} plan, not {variant!r}")
        return Quantization(net.quant_plan, get_scales(net), "rsq")
    if not quant_json:
        if variant is None:
            return None
        raise ValueError(f"--quant {variant} of an FP32 experiment needs --quant_json (PTQ plan + scales "
                         f"from rsqasr.bin.quantize)")
    plan, scales = load_quant(quant_json)
    if variant is not None and plan.kind != variant:
        raise ValueError(f"{quant_json}: a {plan.kind!r} plan, not {variant!r}")
    return Quantization(plan, scales, "ptq")


def fp32_intmodel(net: nn.Module) -> IntModel:
    """An ``IntModel`` whose layers are all FP32 (runs the float network in numpy); folds
    ``net``'s BatchNorm in place."""
    return IntModel.from_scales(net, make_plan(net, kind="fp32"), {})
