"""KL (entropy) calibration of activation scales, as TensorRT describes it.

    scales = calibrate(net, plan, batches)     # {layer: {"act": s_in, "weight": s_w}}

Activations: for every quantized layer, forward hooks collect a 2048-bin histogram of |x| of
its INPUT (the tensor the engine converts to int8). Two passes over the calibration batches:
pass 1 records max|x| per tensor, pass 2 fills histograms over [0, max|x|] (so the range never has
to grow and no re-binning error is introduced). Each utterance runs alone (batch 1, sliced to its
length), so padded frames never enter a histogram. The threshold comes from ``kl_threshold``
with ``T + 1`` quantization levels (128 for [-127, 127], 64 for [-63, 63]); the scale is
threshold / T, T being the layer's integer range (127 or 63).

Weights: max-abs (``max|w| / T_w``, per tensor or per output channel as the plan says), the
usual choice for weights (their distribution has no outliers to clip worth a KL search, and the
paper's KL calibration is for activations).

``kl_threshold`` (TensorRT, "8-bit Inference with TensorRT", GTC 2017): for i in 128..2047
(bins kept), P = hist[:i] with the outliers sum(hist[i:]) added to P[i-1]; Q = hist[:i] merged
into ``levels`` groups (bin b goes to group floor(b*levels/i), i.e. group j holds bins
ceil(j*i/levels) .. ceil((j+1)*i/levels)-1, as np.digitize over linspace(0, i, levels+1)), each
group's count spread evenly over the group's non-zero bins of hist[:i], zero elsewhere; both
normalized; KL(P||Q) = sum P log(P/Q) over P > 0 (Q = 0 there -> +inf). The threshold is the
right edge of bin i for the last i reaching the minimum.

The zero spike. After a ReLU 50-80% of a layer's inputs are exactly 0, and all of them land in
bin 0. Q spreads the count of each level over its bins, so the first level's share of that spike
is smeared over its other bins; the narrowest candidates (fewest bins per level, so the least
smearing) then win the search and the threshold comes out far too small (ReLU(N(-0.5, 1)):
0.28 where the 99.99th percentile is 3.21). As NVIDIA's pytorch-quantization histogram calibrator
does (``_compute_amax_entropy``), bin 0's count is replaced by bin 1's before the search
(``zero_bin="neighbour"``, the default); the zeros are represented exactly by any scale, so they
carry no information about where to clip.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import nn

from rsqasr.quant.plan import QuantPlan

NUM_BINS = 2048
START_BIN = 128


def kl_divergence_curve(hist: np.ndarray, levels: int, start: int = START_BIN, chunk: int = 256) -> np.ndarray:
    """KL divergence for i = start..len(hist) bins kept (array index i - start); vectorized over
    chunks of candidate i (row r of a chunk is one candidate, columns are bins)."""
    hist = np.asarray(hist, dtype=np.float64)
    n = len(hist)
    out = np.full(n - start + 1, np.inf)
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])     # tail[i] = sum(hist[i:])
    b = np.arange(n)
    for c0 in range(start, n + 1, chunk):
        ii = np.arange(c0, min(n + 1, c0 + chunk))                   # candidates
        r = len(ii)
        inside = b[None, :] < ii[:, None]                             # [r][n]
        sliced = np.where(inside, hist[None, :], 0.0)
        p = sliced.copy()
        p[np.arange(r), ii - 1] += tail[ii]
        nonzero = sliced != 0
        group = (b[None, :] * levels) // ii[:, None]                  # bin -> level floor(b*levels/i)
        group = np.where(inside, group, levels)                       # outside: a dummy level
        flat = (np.arange(r)[:, None] * (levels + 1) + group).ravel()
        gsum = np.bincount(flat, weights=sliced.ravel(), minlength=r * (levels + 1)).reshape(r, -1)
        gcnt = np.bincount(flat, weights=nonzero.ravel(), minlength=r * (levels + 1)).reshape(r, -1)
        rows = np.arange(r)[:, None]
        q = np.where(nonzero, gsum[rows, group] / np.maximum(gcnt[rows, group], 1), 0.0)
        ps, qs = p.sum(1, keepdims=True), q.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = p / ps
            q = q / qs
            m = p > 0
            bad = np.any(m & (q == 0), axis=1) | (ps[:, 0] == 0) | (qs[:, 0] == 0)
            terms = np.where(m, p * np.log(np.where(m, p, 1.0) / np.where(m & (q > 0), q, 1.0)), 0.0)
        kl = terms.sum(1)
        kl[bad] = np.inf
        out[ii - start] = kl
    return out


def kl_threshold_bin(hist: np.ndarray, levels: int = 128, start: int = START_BIN,
                     zero_bin: str = "neighbour") -> int:
    """Number of bins kept (the threshold is its right edge); the LAST argmin on ties.
    ``zero_bin``: "neighbour" replaces bin 0's count by bin 1's (see the module docstring), "keep"
    searches the histogram as given."""
    if zero_bin not in ("neighbour", "keep"):
        raise ValueError(f"zero_bin must be 'neighbour' or 'keep', got {zero_bin!r}")
    hist = np.array(hist, dtype=np.float64)
    if zero_bin == "neighbour" and len(hist) > 1:
        hist[0] = hist[1]
    if len(hist) <= start:
        return len(hist)
    kl = kl_divergence_curve(hist, levels, start)
    if not np.isfinite(kl).any():
        return len(hist)
    best = np.nanmin(kl)
    return start + int(np.flatnonzero(kl == best)[-1])


def kl_threshold(hist: np.ndarray, edges: np.ndarray, levels: int = 128, zero_bin: str = "neighbour") -> float:
    return float(edges[kl_threshold_bin(hist, levels, zero_bin=zero_bin)])


class _Collector:
    def __init__(self):
        self.amax = 0.0
        self.hist = np.zeros(NUM_BINS, dtype=np.float64)
        self.pass_ = 1

    def __call__(self, mod, inputs):
        x = inputs[0].detach().abs().float()
        if self.pass_ == 1:
            self.amax = max(self.amax, float(x.max()))
        elif self.amax > 0:
            h = torch.histc(x.flatten(), bins=NUM_BINS, min=0.0, max=self.amax)
            self.hist += h.double().cpu().numpy()


def _utterances(batches: Iterable) -> list[tuple[torch.Tensor, torch.Tensor]]:
    utts = []
    for b in batches:
        feats, lens = b[0], b[1]
        for f, n in zip(feats, lens):
            n = int(n)
            utts.append((f[:n].unsqueeze(0), torch.tensor([n], device=f.device)))
    return utts


def weight_scales(net: nn.Module, plan: QuantPlan) -> dict:
    out = {}
    for lp in plan.quantized_layers():
        w = net.get_submodule(lp.name).weight.detach().float()
        if lp.per_channel:
            out[lp.name] = (w.abs().flatten(1).amax(1).clamp(min=1e-8) / lp.w_T).tolist()
        else:
            out[lp.name] = float(w.abs().max().clamp(min=1e-8)) / lp.w_T
    return out


@torch.no_grad()
def calibrate(net: nn.Module, plan: QuantPlan, batches: Iterable, method: str = "kl",
              progress: bool = False) -> dict:
    """Scales for every quantized layer of ``plan``: ``{name: {"act": float, "weight": float|list}}``.

    ``batches`` yields ``(feats (B, T, D), lens (B,), ...)`` of features AFTER global CMVN (what
    ``net`` sees); ``net`` is the float model (before ``quantize_model``).
    ``method``: "kl" (TensorRT entropy) or "max" (max-abs).
    """
    if method not in ("kl", "max"):
        raise ValueError(f"method must be 'kl' or 'max', got {method!r}")
    from rsqasr.models.common import fold_batchnorm

    fold_batchnorm(net)  # calibrate what the plan describes: the folded convs
    utts = _utterances(batches)
    if not utts:
        raise ValueError("calibrate: no calibration data")
    cols, handles = {}, []
    for lp in plan.quantized_layers():
        c = _Collector()
        cols[lp.name] = c
        handles.append(net.get_submodule(lp.name).register_forward_pre_hook(c))
    was = net.training
    net.eval()
    try:
        passes = (1,) if method == "max" else (1, 2)
        for p in passes:
            for c in cols.values():
                c.pass_ = p
            it = utts
            if progress:
                from tqdm import tqdm
                it = tqdm(utts, desc=f"calibration pass {p}", disable=None)
            for feats, lens in it:
                net(feats, lens)
    finally:
        for h in handles:
            h.remove()
        net.train(was)
    ws = weight_scales(net, plan)
    out = {}
    for lp in plan.quantized_layers():
        c = cols[lp.name]
        if c.amax <= 0:
            thr = 1e-8 * lp.act_T
        elif method == "max":
            thr = c.amax
        else:
            edges = np.linspace(0.0, c.amax, NUM_BINS + 1)
            thr = kl_threshold(c.hist, edges, lp.act_T + 1)
        out[lp.name] = {"act": max(thr, 1e-8) / lp.act_T, "weight": ws[lp.name],
                        "act_amax": c.amax, "act_threshold": thr}
    return out
