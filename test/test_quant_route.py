"""The one route of quantization scales and plans: the integer model's single constructor
(``IntModel.from_scales``), the one (M, shift) function both integer paths use, the FP32 plan
kind, the one Winograd rule, the plan file, and the PTQ-or-RSQ choice of decode and export."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from rsqasr.models import build_model
from rsqasr.models.count import conv1d_layers
from rsqasr.quant import (IntModel, calibrate, get_scales, is_winograd_shaped, make_plan, quantize_model,
                          resolve_quantization, save_quant, winograd_candidates)
from rsqasr.quant.intref import int_layer
from rsqasr.quant.lsq import LSQQuantizer
from rsqasr.quant.numerics import multiplier_real, quantize_multiplier, requant_multipliers
from rsqasr.quant.plan import SCHEMES, QuantPlan
from rsqasr.quant.scales import layer_scales

from test_quant import TINY_DFSMN, TINY_W2L, tiny

LAYER_FIELDS = ("w", "b", "s_in", "s_w", "M", "shift", "lo", "hi", "s_out", "deq")


def _calibrated(conf, plan_kw, seed=0):
    net = tiny(conf, seed)
    plan = make_plan(net, **plan_kw)
    torch.manual_seed(seed + 1)
    scales = calibrate(net, plan, [(torch.randn(2, 60, 20), torch.full((2,), 60))], method="kl")
    return net, plan, scales


def _same_layer(a, b, name):
    for f in LAYER_FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        if x is None or y is None:
            assert x is None and y is None, (name, f)
        else:
            assert np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y), (name, f, x, y)


def test_requant_multipliers_is_the_per_channel_rule():
    """What intref and the fake-quant exact forward each computed before: quantize_multiplier of
    multiplier_real per output channel."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        s_in, s_out = np.float32(rng.uniform(1e-3, 1)), np.float32(rng.uniform(1e-3, 1))
        s_w = rng.uniform(1e-4, 0.1, int(rng.integers(1, 9))).astype(np.float32)
        M, shift = requant_multipliers(s_in, s_w, s_out)
        old = [quantize_multiplier(multiplier_real(s_in, sw, s_out)) for sw in s_w]
        assert M.dtype == shift.dtype == np.int64
        assert M.tolist() == [m for m, _ in old] and shift.tolist() == [s for _, s in old]
    M, shift = requant_multipliers(np.float32(0.5), np.array([0.5, 1.5], np.float32), np.float32(0.25))
    assert M.tolist() == [2 ** 30, 1610612736] and shift.tolist() == [-1, -2]     # m = 1.0 and 3.0


@pytest.mark.parametrize("conf,plan_kw", [
    (TINY_DFSMN, {}),
    (TINY_DFSMN, {"kind": "int8_gemm", "quantize_classifier": True, "weight_per_channel": True}),
    ({**TINY_DFSMN, "batch_norm": True}, {}),
    (TINY_W2L, {"quantize_classifier": True})], ids=["dfsmn-wino", "dfsmn-gemm-pc-cls", "dfsmn-bn", "w2l-cls"])
def test_ptq_and_rsq_build_the_same_integer_model(conf, plan_kw):
    """PTQ straight from the float net, the wrapped net with its own scales, and every wrapper's
    exact-forward layer are the same integers, layer for layer."""
    net, plan, scales = _calibrated(conf, plan_kw)
    ptq = IntModel.from_scales(copy.deepcopy(net), plan, scales)
    qnet = quantize_model(net, plan, scales)
    rsq = IntModel.from_scales(qnet, qnet.quant_plan, get_scales(qnet))
    assert list(ptq.layers) == list(rsq.layers) == list(plan.layers)
    requant = 0
    for name, lp in plan.layers.items():
        _same_layer(ptq.layers[name], rsq.layers[name], name)
        if lp.quantized:
            _same_layer(qnet.get_submodule(name).int_layer(), rsq.layers[name], name)
            requant += lp.out == "requant"
        else:
            assert np.array_equal(ptq.layers[name].w, net.get_submodule(name).weight.detach().numpy())
    assert requant >= 2                     # the requant (M, shift) path is covered
    feats = np.random.default_rng(3).standard_normal((41, 20)).astype(np.float32)
    assert np.array_equal(ptq.run(feats), rsq.run(feats))
    other = build_model({**conf, "front_channels": 16}, 20, 12)
    with pytest.raises(ValueError, match="the plan says"):
        IntModel.from_scales(other, plan, scales)


def test_layer_scales_are_the_lsq_effective_scales():
    """float32, floored at EPS, per output channel: what LSQQuantizer.effective_scale gives."""
    net = tiny(TINY_DFSMN)
    lp = make_plan(net, kind="int8_gemm", weight_per_channel=True).layers["context.conv"]
    for act, weight in [(0.1234567891, 0.0123456789), (1e-9, [3e-9] * lp.cout),
                        (0.3, list(np.linspace(1e-3, 1e-1, lp.cout)))]:
        s_in, s_w = layer_scales(lp, {"act": act, "weight": weight})
        a, w = LSQQuantizer(lp.act_T, ndim=3), LSQQuantizer(lp.w_T, channels=lp.cout, ch_axis=0, ndim=3)
        a.set_scale(act)
        w.set_scale(weight)
        assert isinstance(s_in, np.float32) and s_in == a.effective_scale().item()
        assert s_w.dtype == np.float32 and s_w.shape == (lp.cout,)
        assert np.array_equal(s_w, w.effective_scale().detach().flatten().numpy())


def test_int_layer_requant_needs_the_consumer():
    net, plan, scales = _calibrated(TINY_DFSMN, {})
    lp = next(lp for lp in plan.layers.values() if lp.out == "requant")
    s_in, s_w = layer_scales(lp, scales[lp.name])
    with pytest.raises(ValueError, match="consumer"):
        int_layer(lp, net.get_submodule(lp.name).weight, None, s_in, s_w)
    il = int_layer(lp, net.get_submodule(lp.name).weight, None, s_in, s_w, (np.float32(0.05), 0, 63))
    assert (il.lo, il.hi, il.s_out) == (0, 63, np.float32(0.05)) and il.deq is None
    assert np.array_equal(il.b, np.zeros(lp.cout, np.int64)) and np.abs(il.w).max() <= lp.w_T


def test_fp32_plan_kind_is_the_int8_gemm_graph_unquantized():
    """make_plan(kind="fp32") is what the FP32 export used to build: the int8_gemm plan with every
    layer rewritten to fp32 (same graph, options, shapes and pads)."""
    for conf in (TINY_DFSMN, {**TINY_DFSMN, "batch_norm": True}, TINY_W2L):
        old = make_plan(tiny(conf), kind="int8_gemm")
        for lp in old.layers.values():
            lp.scheme, lp.act_T, lp.w_T, lp.per_channel = "fp32", 0, 0, False
            lp.out, lp.out_consumer, lp.out_relu = "float", None, False
        old.kind = "fp32"
        new = make_plan(tiny(conf), kind="fp32")
        assert new.to_dict() == old.to_dict()
        assert not new.quantized_layers()
    with pytest.raises(ValueError, match="plan kind"):
        make_plan(tiny(TINY_DFSMN), kind="int4")


def test_one_winograd_rule():
    """The wino23 layers of a plan are exactly the dense Winograd candidates of the model."""
    assert SCHEMES == ("fp32", "int8", "wino23")           # the model file's scheme codes 0, 1, 2
    assert is_winograd_shaped(3, 1) and is_winograd_shaped(15, 1)
    assert not (is_winograd_shaped(2, 1) or is_winograd_shaped(3, 2) or is_winograd_shaped(3, 1, dilation=2))
    for conf in (TINY_DFSMN, TINY_W2L):
        net = tiny(conf)
        wino = {lp.name for lp in make_plan(net, kind="wino").layers.values() if lp.scheme == "wino23"}
        assert wino == {n for n, _ in winograd_candidates(net)} and wino
        every = {n for n, _ in winograd_candidates(net, include_depthwise=True)}
        assert every == {n for n, c in conv1d_layers(net) if c.kernel_size[0] >= 3 and c.stride[0] == 1}


def test_plan_file_is_one_atomic_json(tmp_path):
    net, plan, scales = _calibrated(TINY_DFSMN, {})
    save_quant(tmp_path / "quant.json", plan, scales)
    plan.save(tmp_path / "plan.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "quant.json"]    # no temp file left
    d = json.loads((tmp_path / "quant.json").read_text())
    assert set(d) == {"plan", "scales"} and d["scales"] == json.loads(json.dumps(scales))
    p2, sc = QuantPlan.load_file(tmp_path / "plan.json")
    assert sc is None and p2.to_dict() == plan.to_dict()
    assert QuantPlan.load(tmp_path / "quant.json").to_dict() == plan.to_dict()


def test_resolve_quantization_chooses_ptq_rsq_or_fp32(tmp_path):
    net, plan, scales = _calibrated(TINY_DFSMN, {"kind": "wino"})
    save_quant(tmp_path / "q.json", plan, scales)
    fp32 = tiny(TINY_DFSMN)
    assert resolve_quantization(fp32) is None                        # decoding an FP32 model: nothing to do
    q = resolve_quantization(fp32, "none")
    assert (q.source, q.plan.kind, q.scales, len(q.plan.quantized_layers())) == ("fp32", "fp32", {}, 0)
    assert q.torch_net(fp32) is fp32
    q = resolve_quantization(tiny(TINY_DFSMN), quant_json=tmp_path / "q.json")
    assert (q.source, q.plan.kind) == ("ptq", "wino") and q.scales == json.loads(json.dumps(scales))
    with pytest.raises(ValueError, match="'wino' plan, not 'int8_gemm'"):
        resolve_quantization(tiny(TINY_DFSMN), "int8_gemm", tmp_path / "q.json")
    with pytest.raises(ValueError, match="needs --quant_json"):
        resolve_quantization(tiny(TINY_DFSMN), "wino")
    rsq = quantize_model(net, plan, scales)
    q = resolve_quantization(rsq, "wino")
    assert q.source == "rsq" and q.plan is rsq.quant_plan and q.scales == get_scales(rsq)
    assert q.torch_net(rsq) is rsq and all(m.mode == "exact" for m in rsq.modules() if hasattr(m, "int_layer"))
    for bad, needle in [(("none", None), "FP32 experiment"), (("int8_gemm", None), "not 'int8_gemm'"),
                        ((None, tmp_path / "q.json"), "for FP32 experiments")]:
        with pytest.raises(ValueError, match=needle):
            resolve_quantization(rsq, *bad)
    # PTQ's PyTorch reference is a quantized copy; the float net stays unwrapped
    float_net = tiny(TINY_DFSMN)
    q = resolve_quantization(float_net, "wino", tmp_path / "q.json")
    ref = q.torch_net(float_net)
    assert ref is not float_net and hasattr(ref, "quant_plan") and not hasattr(float_net, "quant_plan")
