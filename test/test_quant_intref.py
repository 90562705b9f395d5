"""rsqasr.quant.intref: integer Conv1D (GEMM, Winograd F(2,3)), and the whole quantized model
against the fake-quant torch model."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
import yaml

from rsqasr.ctc_model import greedy_ids
from rsqasr.models import build_model
from rsqasr.quant import intref
from rsqasr.quant.calibrate import calibrate
from rsqasr.quant.intref import (BT_ERRATUM, IntModel, RangeError, conv_depthwise_int, conv_gemm_int,
                                 conv_wino23_int)
from rsqasr.quant.plan import make_plan
from rsqasr.quant.rsq import quantize_model, set_mode

from test_quant import TINY_DFSMN, TINY_W2L, tiny
from conftest import REPO


def _direct(x, w, pl, pr, stride=1):
    """Textbook loop (the QUANT.md formula) on a small case."""
    t_in, cin = x.shape
    cout, _, k = w.shape
    t_out = (t_in + pl + pr - k) // stride + 1
    acc = np.zeros((t_out, cout), dtype=np.int64)
    for t in range(t_out):
        for j in range(k):
            r = t * stride - pl + j
            if 0 <= r < t_in:
                acc[t] += w[:, :, j] @ x[r]
    return acc


def test_gemm_matches_direct_loop():
    rng = np.random.default_rng(0)
    for k, stride, t_in in [(1, 1, 7), (3, 2, 9), (3, 2, 10), (4, 1, 6), (5, 2, 5)]:
        x = rng.integers(-127, 128, (t_in, 5))
        w = rng.integers(-127, 128, (3, 5, k))
        pl, pr = (k - 1) // 2, k // 2
        assert np.array_equal(conv_gemm_int(x, w, None, stride, pl, pr), _direct(x, w, pl, pr, stride))


@pytest.mark.parametrize("k", list(range(3, 16)))
def test_winograd_equals_direct(k):
    rng = np.random.default_rng(k)
    for trial in range(4):
        cin, cout = int(rng.integers(1, 23)), int(rng.integers(1, 19))
        t_in = int(rng.integers(max(1, k - 4), 41)) + trial % 2           # odd and even lengths
        pl, pr = int(rng.integers(0, k)), int(rng.integers(0, k))
        if t_in + pl + pr < k:
            continue
        x = rng.integers(-63, 64, (t_in, cin))
        w = rng.integers(-42, 43, (cout, cin, k))
        b = rng.integers(-10 ** 6, 10 ** 6, cout)
        ref = conv_gemm_int(x, w, b, 1, pl, pr)
        got = conv_wino23_int(x, w, b, pl, pr, debug=True)
        assert got.shape == ref.shape and np.array_equal(got, ref), \
            f"k={k} cin={cin} cout={cout} t_in={t_in} pads={pl},{pr}: first diff at {np.argwhere(got != ref)[0]}"


def test_winograd_extremes_stay_in_range():
    # every sign pattern of a 4-sample input tile at +-63 and of a 3-tap kernel at +-42
    d = np.array(list(itertools.product([-63, 63], repeat=4)))         # 16 tiles
    g = np.array(list(itertools.product([-42, 42], repeat=3)))         # 8 kernels
    x = d.reshape(-1, 1)                                               # 64 frames, 1 channel
    x = np.concatenate([x, np.tile([[63], [-63]], (8, 1)), np.full((5, 1), -63)])   # alternating, constant
    w = g.reshape(8, 1, 3)
    u = intref.G2 @ g.T
    v = intref.BT @ d.T
    assert np.abs(u).max() == 126 and np.abs(v).max() == 126            # the bounds are reached
    for k in (3, 6, 7, 15):
        wk = np.concatenate([w] * (k // 3 + 1), axis=2)[:, :, :k]
        for pads in [(0, 0), (k // 2, (k - 1) // 2), (k - 1, k - 1)]:
            assert np.array_equal(conv_wino23_int(x, wk, None, *pads, debug=True),
                                  conv_gemm_int(x, wk, None, 1, *pads))
    with pytest.raises(RangeError):
        conv_wino23_int(np.full((8, 1), 64), np.full((1, 1, 3), 1), None, debug=True)
    with pytest.raises(RangeError):
        conv_wino23_int(np.full((8, 1), 1), np.full((1, 1, 3), 43), None, debug=True)


def test_winograd_erratum_bt_is_wrong():
    rng = np.random.default_rng(5)
    x = rng.integers(-63, 64, (20, 4))
    w = rng.integers(-42, 43, (3, 4, 3))
    good = conv_gemm_int(x, w, None, 1, 1, 1)
    assert np.array_equal(conv_wino23_int(x, w, None, 1, 1, bt=intref.BT), good)
    bad = conv_wino23_int(x, w, None, 1, 1, bt=BT_ERRATUM)
    assert not np.array_equal(bad, good)


def test_depthwise_matches_per_channel_gemm():
    rng = np.random.default_rng(6)
    x = rng.integers(-127, 128, (17, 6))
    w = rng.integers(-127, 128, (6, 1, 5))
    got = conv_depthwise_int(x, w, None, 1, 2, 2)
    for c in range(6):
        assert np.array_equal(got[:, c], conv_gemm_int(x[:, c:c + 1], w[c:c + 1], None, 1, 2, 2)[:, 0])


# ---------------------------------------------------------------- whole model
def _quantized(conf, plan_kw, seed=0, dim=20, vocab=12, per_utt=3, method="kl"):
    net = tiny(conf, seed, dim, vocab)
    with torch.no_grad():                      # confident logits so greedy outputs mean something
        net.classifier.weight.mul_(30.0)
    plan = make_plan(net, **plan_kw)
    torch.manual_seed(seed + 100)
    batches = [(torch.randn(per_utt, 70, dim), torch.full((per_utt,), 70))]
    scales = calibrate(net, plan, batches, method=method)
    return quantize_model(net, plan, scales)


CASES = [(TINY_DFSMN, {}, "kl"), (TINY_W2L, {}, "kl"),
         (TINY_DFSMN, {"kind": "int8_gemm", "quantize_classifier": True, "weight_per_channel": True}, "max"),
         (TINY_W2L, {"quantize_classifier": True}, "max"), (TINY_DFSMN, {"depthwise": "fp32"}, "max"),
         ({**TINY_DFSMN, "batch_norm": True}, {}, "kl")]  # BatchNorm folded into the convs by make_plan


@pytest.mark.parametrize("conf,plan_kw,method", CASES, ids=["dfsmn-wino", "w2l-wino", "dfsmn-gemm-pc-cls", "w2l-cls",
                                                            "dfsmn-fp32-memory", "dfsmn-bn-wino"])
def test_intref_matches_fake_quant_model(conf, plan_kw, method):
    net = _quantized(conf, plan_kw, method=method).eval()
    torch.manual_seed(7)
    feats = torch.randn(1, 91, 20)
    lens = torch.tensor([91])
    cls_in = {}
    h = net.classifier.register_forward_pre_hook(lambda m, i: cls_in.__setitem__("x", i[0][0].numpy().copy()))
    with torch.no_grad():
        fake, out_lens = net(feats, lens)
        set_mode(net, "exact")
        exact, _ = net(feats, lens)
        set_mode(net, "fake")
    h.remove()
    im = IntModel.from_fake_quant(net, debug=True)
    ref, vals = im.run(feats[0].numpy(), return_values=True)
    assert ref.shape == tuple(fake.shape[1:]) and ref.dtype == np.float32
    # exact mode: bit-identical up to the classifier input; the classifier itself within float tolerance
    lin = next(n for n in im.plan.graph.nodes if n.module == "classifier")
    v = vals[lin.inputs[0]]
    v = v.q.astype(np.float32) * v.s if isinstance(v, intref.QTensor) else v
    if any(lp.op == "conv" and not lp.quantized for lp in im.plan.layers.values()):
        assert np.allclose(v, cls_in["x"], rtol=1e-5, atol=1e-6 * np.abs(v).max())   # FP32 conv: BLAS order
    else:
        assert np.array_equal(v, cls_in["x"])
    scale = float(np.abs(ref).max())
    assert np.abs(ref - exact[0].numpy()).max() <= 1e-5 * scale
    assert greedy_ids(exact, out_lens) == greedy_ids(torch.from_numpy(ref)[None], out_lens)
    # fake mode (training forward): same points and rounding, single vs double rounding of requants
    diff = np.abs(ref - fake[0].numpy()).max() / scale
    agree = float((ref.argmax(1) == fake[0].numpy().argmax(1)).mean())
    print(f"\nfake vs intref: max|diff|/max|logit| = {diff:.2e}, frame argmax agreement {agree:.3f}")
    assert diff < 0.05 and agree >= 0.95
    assert greedy_ids(fake, out_lens) == greedy_ids(torch.from_numpy(ref)[None], out_lens)


def test_intref_mini_convdfsmn_600_frames_timing():
    conf = yaml.safe_load((REPO / "egs/mini_aishell/conf/train_convdfsmn.yaml").read_text())["model"]
    torch.manual_seed(0)
    net = build_model(conf, 80, 850).eval()
    plan = make_plan(net)
    # scales from max-abs on a couple of random utterances (enough for timing)
    scales = calibrate(net, plan, [(torch.randn(1, 200, 80), torch.tensor([200]))], method="max")
    quantize_model(net, plan, scales)
    im = IntModel.from_fake_quant(net)
    feats = np.random.default_rng(0).standard_normal((600, 80)).astype(np.float32)
    im.run(feats)
    t0 = time.perf_counter()
    logits = im.run(feats)
    dt = time.perf_counter() - t0
    print(f"\nintref mini ConvDFSMN, 600 frames -> {logits.shape}: {dt:.3f} s")
    assert logits.shape == (150, 850)  # the time is printed, never asserted (speed lives in benchmarks)
