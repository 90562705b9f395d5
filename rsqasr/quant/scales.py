"""Quantization scales: their check against a plan, their file, and the float32 values every
integer path uses.

    scales = calibrate(net, plan, batches)        # PTQ: {layer: {"act": s_in, "weight": s_w | [s_w per channel]}}
    save_quant("exp/x/ptq_wino/quant.json", plan, scales); plan, scales = load_quant(...)
    scales = get_scales(net)                      # RSQ: the same mapping, of the scales it learned
    IntModel.from_scales(net, plan, scales)       # the integer model, from either

One mapping carries the scales everywhere, whether KL calibration computed them or RSQ learned
them; ``layer_scales`` turns an entry into what the integer reference, the exporter and the
fake-quant "exact" forward compute with, the way the LSQ parameters hold them: float32, floored at
``numerics.SCALE_EPS`` (as ``LSQQuantizer.effective_scale``), the weight scale as one value per output channel.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from rsqasr.quant.numerics import SCALE_EPS
from rsqasr.quant.plan import LayerPlan, QuantPlan


def act_scale(s) -> np.float32:
    """An activation scale as the LSQ parameter holds it and every path uses it: float32, >= SCALE_EPS."""
    return np.maximum(np.float32(s), np.float32(SCALE_EPS))


def layer_scales(lp: LayerPlan, sc: dict) -> tuple[np.float32, np.ndarray]:
    """``(s_in, s_w)`` of a quantized layer from its entry ``{"act", "weight"}``: float32, >= SCALE_EPS,
    ``s_w`` with one value per output channel (a per-tensor scale repeated)."""
    s_w = np.maximum(np.asarray(sc["weight"], dtype=np.float32).reshape(-1), np.float32(SCALE_EPS))
    return act_scale(sc["act"]), np.broadcast_to(s_w, (lp.cout,)).astype(np.float32)


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


def save_quant(path: str | Path, plan: QuantPlan, scales: dict) -> None:
    """A quant.json: the plan (with its graph) and the scales in one file (``QuantPlan.save``)."""
    plan.save(path, scales)


def load_quant(path: str | Path) -> tuple[QuantPlan, dict]:
    """The plan and scales of a quant.json; a malformed file is a ValueError naming it."""
    plan, scales = QuantPlan.load_file(path)
    check_scales(plan, scales, str(path))
    return plan, scales
