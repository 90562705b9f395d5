"""Integer reference: exactly what the deployed engine computes, in numpy (batch 1).

    im = IntModel.from_scales(net, plan, scales)   # the one constructor: PTQ (calibrated scales),
                                                   # RSQ (get_scales(net): the learned ones), FP32 ({})
    logits = im.run(feats)                         # feats (T, D) float32, AFTER global CMVN -> (T', V)

``int_layer`` turns one layer's float weight and bias and its scales into what the engine stores
(integer weight, int32 bias, requantization multipliers and shifts or dequantization scales); the
fake-quant "exact" forward (``rsqasr.quant.rsq``) computes with the same function, so both paths
hold the same integers by construction.

Integer arithmetic is done in int64 numpy arrays; integer GEMMs run as float64 BLAS matmuls of
integer-valued arrays, which is exact (every product and partial sum is an integer below 2^53,
checked per call), so the result does not depend on summation order. Float32 appears only where
the plan says so: the network input, dequantized outputs (float32(acc) * float32(s_in*s_w)),
float adds/ReLUs of the graph (numpy float32, elementwise, one rounding each, in the traced order),
and FP32 layers (the classifier by default; BLAS order, hence compared with a tolerance).

Conv algorithms (activations time-major [T][C], weights [cout][cin][k] as in src_arm/include/rsq/rsq.h):
- ``conv_gemm_int``: acc[t][co] = bias[co] + sum_{j,ci} x[t*stride - pad_left + j][ci] * w[co][ci][j].
- ``conv_wino23_int``: F(2,3) Winograd, stride 1, k >= 3: floor(k/3) 3-tap chunks in the Winograd
  domain plus k%3 leftover taps as GEMM, all in one int32 tile, with

      B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]   (paper Eq. 2 prints row 4 as [0,-1,0,1]: wrong)
      G'  = 2G = [[2,0,0],[1,1,1],[1,-1,1],[0,0,2]]
      A^T = [[1,1,1,0],[0,1,-1,-1]]
      Y   = (A^T [ sum_{chunks, ci} (G' g) . (B^T d) ]) >> 1       (exact: the sum is even)

  With |d| <= 63 and |g| <= 42 every transformed value is within [-126, 126] (``debug=True``
  asserts it, and that the sum is even).
- ``conv_depthwise_int``: groups == cin == cout (the DFSMN memory), direct.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rsqasr.quant.numerics import (INT32_MAX, INT32_MIN, dequant_scale, quantize_bias, quantize_f32_np,
                                   quantize_f32_torch, requant_multipliers, requantize_np)
from rsqasr.quant.plan import LayerPlan, QuantPlan
from rsqasr.quant.scales import check_scales, layer_scales

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.int64)
BT_ERRATUM = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]], dtype=np.int64)
G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], dtype=np.int64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.int64)
WINO_LIMIT = 126


class RangeError(AssertionError):
    pass


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matmul via float64 BLAS; exact because |sum| < 2^53 (checked)."""
    if a.size and b.size:
        bound = float(np.abs(a).max()) * float(np.abs(b).max()) * a.shape[-1]
        if bound >= 2.0 ** 53:
            raise OverflowError(f"integer GEMM bound {bound:.3g} exceeds 2^53")
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def _check_acc(acc: np.ndarray, where: str) -> np.ndarray:
    if acc.size and (acc.max() > INT32_MAX or acc.min() < INT32_MIN):
        raise OverflowError(f"{where}: int32 accumulator overflow ({acc.min()}, {acc.max()})")
    return acc


def out_length(t_in: int, k: int, stride: int, pad_left: int, pad_right: int) -> int:
    t_out = (t_in + pad_left + pad_right - k) // stride + 1
    if t_out <= 0:
        raise ValueError(f"input of {t_in} frames too short for k={k}, stride={stride}, pads={pad_left},{pad_right}")
    return t_out


def _padded(x: np.ndarray, pad_left: int, rows: int) -> np.ndarray:
    xp = np.zeros((rows, x.shape[1]), dtype=np.int64)
    n = min(x.shape[0], rows - pad_left)
    xp[pad_left:pad_left + n] = x[:n]
    return xp


def conv_gemm_int(x, w, bias=None, stride: int = 1, pad_left: int = 0, pad_right: int = 0) -> np.ndarray:
    """x [T][cin] ints, w [cout][cin][k] ints -> int32-range acc [T_out][cout] (int64 array)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    cout, cin, k = w.shape
    t_out = out_length(x.shape[0], k, stride, pad_left, pad_right)
    xp = _padded(x, pad_left, (t_out - 1) * stride + k)
    idx = np.arange(t_out)[:, None] * stride + np.arange(k)[None, :]          # [T_out][k]
    cols = xp[idx].reshape(t_out, k * cin)                                     # (j, ci) order
    wm = w.transpose(0, 2, 1).reshape(cout, k * cin)
    acc = _exact_matmul(cols, wm.T)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)[None, :]
    return _check_acc(acc, "conv_gemm_int")


def conv_depthwise_int(x, w, bias=None, stride: int = 1, pad_left: int = 0, pad_right: int = 0) -> np.ndarray:
    """Depthwise: x [T][C], w [C][1][k] -> acc [T_out][C]."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    c, one, k = w.shape
    assert one == 1 and x.shape[1] == c
    t_out = out_length(x.shape[0], k, stride, pad_left, pad_right)
    xp = _padded(x, pad_left, (t_out - 1) * stride + k)
    acc = np.zeros((t_out, c), dtype=np.int64)
    for j in range(k):
        acc += xp[j:j + (t_out - 1) * stride + 1:stride] * w[None, :, 0, j]
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)[None, :]
    return _check_acc(acc, "conv_depthwise_int")


def conv_grouped_int(x, w, bias, groups: int, stride: int, pad_left: int, pad_right: int) -> np.ndarray:
    if groups == 1:
        return conv_gemm_int(x, w, bias, stride, pad_left, pad_right)
    cout, cin_g, k = w.shape
    if cin_g == 1 and cout == groups and x.shape[1] == groups:
        return conv_depthwise_int(x, w, bias, stride, pad_left, pad_right)
    og = cout // groups
    outs = [conv_gemm_int(x[:, g * cin_g:(g + 1) * cin_g], w[g * og:(g + 1) * og], None, stride, pad_left, pad_right)
            for g in range(groups)]
    acc = np.concatenate(outs, axis=1)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)[None, :]
    return _check_acc(acc, "conv_grouped_int")


def conv_wino23_int(x, w, bias=None, pad_left: int = 0, pad_right: int = 0, debug: bool = False,
                    bt: np.ndarray = BT) -> np.ndarray:
    """F(2,3) Winograd Conv1D (stride 1, k >= 3), bit-identical to ``conv_gemm_int`` for
    |x| <= 63, |w| <= 42 (``debug`` asserts the transform ranges)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    cout, cin, k = w.shape
    if k < 3:
        raise ValueError(f"Winograd F(2,3) needs k >= 3, got {k}")
    t_out = out_length(x.shape[0], k, 1, pad_left, pad_right)
    tiles = (t_out + 1) // 2
    xp = _padded(x, pad_left, 2 * tiles + k - 1)
    nc = k // 3
    m = np.zeros((4, tiles, cout), dtype=np.int64)            # Winograd-domain accumulator
    for c in range(nc):
        g = w[:, :, 3 * c:3 * c + 3]                           # [cout][cin][3]
        u = np.einsum("pj,oij->poi", G2, g)                    # G' g: [4][cout][cin]
        rows = 2 * np.arange(tiles)[:, None] + 3 * c + np.arange(4)[None, :]   # [tiles][4]
        d = xp[rows]                                           # [tiles][4][cin]
        v = np.einsum("pr,tri->pti", bt, d)                    # B^T d: [4][tiles][cin]
        if debug:
            if np.abs(u).max(initial=0) > WINO_LIMIT or np.abs(v).max(initial=0) > WINO_LIMIT:
                raise RangeError(f"Winograd transform out of [-126, 126]: |G'g| <= {np.abs(u).max()}, "
                                 f"|B^T d| <= {np.abs(v).max()} (need |x| <= 63, |w| <= 42)")
        for p in range(4):
            m[p] += _exact_matmul(v[p], u[p].T)
    y2 = np.einsum("rp,pto->tro", AT, m).reshape(2 * tiles, cout)   # A^T M, rows 2t, 2t+1
    if debug and np.any(y2 & 1):
        raise RangeError("Winograd output not even: inconsistent transform matrices")
    acc = (y2 >> 1)[:t_out]
    left = k - 3 * nc
    if left:
        acc = acc + conv_gemm_int(xp[3 * nc:3 * nc + t_out + left - 1], w[:, :, 3 * nc:], None, 1, 0, 0)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)[None, :]
    return _check_acc(acc, "conv_wino23_int")


def conv_f32(x: np.ndarray, w: np.ndarray, b, stride: int, pad_left: int, pad_right: int, groups: int) -> np.ndarray:
    """FP32 conv (time-major), float32 BLAS; for FP32 layers only."""
    x = np.asarray(x, dtype=np.float32)
    cout, cin_g, k = w.shape
    t_out = out_length(x.shape[0], k, stride, pad_left, pad_right)
    xp = np.zeros(((t_out - 1) * stride + k, x.shape[1]), dtype=np.float32)
    n = min(x.shape[0], xp.shape[0] - pad_left)
    xp[pad_left:pad_left + n] = x[:n]
    idx = np.arange(t_out)[:, None] * stride + np.arange(k)[None, :]
    og = cout // groups
    outs = []
    for g in range(groups):
        cols = xp[idx][:, :, g * cin_g:(g + 1) * cin_g].reshape(t_out, k * cin_g)
        wm = w[g * og:(g + 1) * og].transpose(0, 2, 1).reshape(og, k * cin_g).astype(np.float32)
        outs.append(cols @ wm.T)
    y = np.concatenate(outs, axis=1).astype(np.float32)
    return y + np.asarray(b, dtype=np.float32)[None, :] if b is not None else y


# ------------------------------------------------------------------ the model
@dataclass
class IntLayer:
    plan: LayerPlan
    w: np.ndarray                     # int64 (quantized) or float32 (fp32), [cout][cin/g][k] or [out][in]
    b: np.ndarray | None              # int64 at s_in*s_w (quantized) or float32
    s_in: np.float32 = np.float32(0)
    s_w: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    # output: requant (M, shift per channel, lo, hi, s_out) or dequant scale
    M: np.ndarray | None = None
    shift: np.ndarray | None = None
    lo: int = 0
    hi: int = 0
    s_out: np.float32 = np.float32(0)
    deq: np.ndarray | None = None


def int_layer(lp: LayerPlan, weight: torch.Tensor, bias: torch.Tensor | None, s_in: np.float32, s_w: np.ndarray,
              requant: tuple[np.float32, int, int] | None = None) -> IntLayer:
    """A quantized layer as the engine stores it, from its float ``weight``/``bias`` and scales
    (``scales.layer_scales``: float32 ``s_in``, ``s_w`` per output channel): integer weight (the
    engine's float -> int rule, ``numerics.quantize_f32_torch``), int32 bias at s_in*s_w, and
    either ``requant = (s_out, lo, hi)`` (the consumer's input scale and range: M and shift per
    channel from ``numerics.requant_multipliers``) or, with None, the dequantization scales."""
    w = weight.detach().float().cpu()
    sw_t = torch.from_numpy(s_w.copy()).reshape([-1] + [1] * (w.dim() - 1))
    wq = quantize_f32_torch(w, sw_t, lp.w_T).to(torch.int64).numpy()
    b = (quantize_bias(bias.detach().float().cpu().numpy(), s_in, s_w) if bias is not None
         else np.zeros(lp.cout, dtype=np.int64))
    il = IntLayer(lp, wq, b, s_in, s_w)
    if lp.out == "requant":
        if requant is None:
            raise ValueError(f"{lp.name}: a requantized output needs the consumer's scale and range")
        s_out, il.lo, il.hi = requant
        il.M, il.shift = requant_multipliers(s_in, s_w, s_out)
        il.s_out = np.float32(s_out)
    else:
        il.deq = dequant_scale(s_in, s_w)
    return il


@dataclass
class QTensor:
    """An int8 value of the graph (integers in [-T, T] as an int array) at scale s."""
    q: np.ndarray
    s: np.float32
    T: int

    def dequantize(self) -> np.ndarray:
        """float32(q) * s, as the engine turns an int8 value back into float32."""
        return self.q.astype(np.float32) * self.s


def as_float(v) -> np.ndarray:
    """A graph value as float32: a ``QTensor`` dequantized, a float array as it is."""
    return v.dequantize() if isinstance(v, QTensor) else np.asarray(v, dtype=np.float32)


class IntModel:
    def __init__(self, plan: QuantPlan, layers: dict[str, IntLayer], debug: bool = False):
        self.plan = plan
        self.layers = layers
        self.debug = debug

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_scales(cls, net, plan: QuantPlan, scales: dict, debug: bool = False) -> "IntModel":
        """The integer model of ``net`` under ``plan`` with ``scales`` (``{layer: {"act", "weight"}}``
        for every quantized layer: ``calibrate``'s or a quant.json's for PTQ, ``get_scales(net)``
        for RSQ; ``{}`` for an FP32 plan). ``net`` may be the float network or the one
        ``quantize_model`` wrapped (the wrappers keep the weight and bias); its BatchNorm is folded
        into the convs first, in place, as ``make_plan`` did before tracing."""
        from rsqasr.models.common import fold_batchnorm

        fold_batchnorm(net)
        check_scales(plan, scales)
        sc = {lp.name: layer_scales(lp, scales[lp.name]) for lp in plan.quantized_layers()}
        layers = {}
        for lp in plan.layers.values():
            mod = net.get_submodule(lp.name)
            wshape = (lp.cout, lp.cin // lp.groups, lp.k) if lp.op == "conv" else (lp.cout, lp.cin)
            if tuple(mod.weight.shape) != wshape:
                raise ValueError(f"{lp.name}: weight of shape {tuple(mod.weight.shape)}, the plan says {wshape} "
                                 f"(a plan of another model?)")
            if not lp.quantized:
                w = mod.weight.detach().float().cpu().numpy().copy()
                b = mod.bias.detach().float().cpu().numpy().copy() if mod.bias is not None else None
                layers[lp.name] = IntLayer(lp, w, b)
                continue
            s_in, s_w = sc[lp.name]
            requant = (sc[lp.out_consumer][0], *plan.out_range(lp)) if lp.out == "requant" else None
            layers[lp.name] = int_layer(lp, mod.weight, mod.bias, s_in, s_w, requant)
        return cls(plan, layers, debug)

    @classmethod
    def from_fake_quant(cls, net, debug: bool = False) -> "IntModel":
        """``from_scales`` of a network ``quantize_model`` wrapped, with its plan and the scales it
        holds (learned by RSQ, or put there from calibration)."""
        from rsqasr.quant.rsq import get_scales

        return cls.from_scales(net, net.quant_plan, get_scales(net), debug)

    # ---------------------------------------------------------------- execution
    def _layer(self, il: IntLayer, v):
        lp = il.plan
        if not lp.quantized:
            x = as_float(v)
            if lp.op == "linear":
                y = (x.astype(np.float32) @ il.w.T).astype(np.float32)
                return y + il.b[None, :] if il.b is not None else y
            y = conv_f32(x.T, il.w, il.b, lp.stride, lp.pad_left, lp.pad_right, lp.groups)
            return y.T.copy()
        # quantize the input (or take the producer's requantized int8 as is)
        if isinstance(v, QTensor):
            if v.T != lp.act_T or v.s != il.s_in:
                raise AssertionError(f"{lp.name}: int8 input at scale {v.s}/±{v.T}, expected {il.s_in}/±{lp.act_T}")
            q = v.q
        else:
            q = quantize_f32_np(v, il.s_in, lp.act_T)
        if self.debug and np.abs(q).max(initial=0) > lp.act_T:
            raise RangeError(f"{lp.name}: input outside ±{lp.act_T}")
        if lp.op == "linear":
            acc = _check_acc(_exact_matmul(q, il.w.T) + il.b[None, :], lp.name)
        else:
            xt = q.T                                             # [T][C] (engine layout)
            if lp.scheme == "wino23":
                acc = conv_wino23_int(xt, il.w, il.b, lp.pad_left, lp.pad_right, debug=self.debug)
            else:
                acc = conv_grouped_int(xt, il.w, il.b, lp.groups, lp.stride, lp.pad_left, lp.pad_right)
        # acc is [T][cout]
        if lp.out == "requant":
            out = QTensor(requantize_np(acc, il.M[None, :], il.shift[None, :], il.lo, il.hi), il.s_out, il.hi)
        else:
            out = acc.astype(np.float32) * il.deq[None, :]
        if lp.op == "conv":
            out = QTensor(out.q.T.copy(), out.s, out.T) if isinstance(out, QTensor) else out.T.copy()
        return out

    def run(self, feats: np.ndarray, return_values: bool = False):
        """feats (T, D) float32 (after global CMVN) -> logits (T', V) float32."""
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim == 3:
            if feats.shape[0] != 1:
                raise ValueError("IntModel.run takes one utterance (batch 1)")
            feats = feats[0]
        vals: dict[int, object] = {}
        for n in self.plan.graph.nodes:
            if n.op == "input":
                vals[n.id] = feats
                continue
            a = vals[n.inputs[0]]
            if n.op == "transpose":
                if n.attrs["dims"] != [1, 2]:
                    raise NotImplementedError(f"transpose {n.attrs['dims']}")
                vals[n.id] = QTensor(a.q.T.copy(), a.s, a.T) if isinstance(a, QTensor) else a.T.copy()
            elif n.op == "pad":
                pw = [(0, 0), (n.attrs["left"], n.attrs["right"])]
                vals[n.id] = QTensor(np.pad(a.q, pw), a.s, a.T) if isinstance(a, QTensor) else np.pad(a, pw)
            elif n.op == "relu":
                vals[n.id] = (QTensor(np.maximum(a.q, 0), a.s, a.T) if isinstance(a, QTensor)
                              else np.maximum(a, np.float32(0)))
            elif n.op == "add":
                b = vals[n.inputs[1]]
                if isinstance(a, QTensor) or isinstance(b, QTensor):
                    raise AssertionError("add of a requantized int8 tensor (plan error)")
                vals[n.id] = (a + b).astype(np.float32)
            elif n.op in ("conv", "linear"):
                vals[n.id] = self._layer(self.layers[n.module], a)
            else:
                raise NotImplementedError(f"node op {n.op}")
        out = vals[self.plan.graph.output]
        if isinstance(out, QTensor):
            out = out.dequantize()
        return (out, vals) if return_values else out


def run(net_or_model, feats: np.ndarray) -> np.ndarray:
    """Convenience: logits of one utterance through the integer reference."""
    im = net_or_model if isinstance(net_or_model, IntModel) else IntModel.from_fake_quant(net_or_model)
    return im.run(feats)
