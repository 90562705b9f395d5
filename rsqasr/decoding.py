"""CTC decoding: best path (greedy) and prefix beam search.

The prefix beam search is our own (the standard algorithm of Hannun et al. 2014, in the log
domain with numpy). espnet's BeamSearch with its CTCPrefixScorer is built for attention
decoders: it needs <sos/eos> tokens and scores every candidate token with a full pass over
the utterance's frames per output step, which is slow on a CPU for CTC-only models; for a
CTC-only model the frame-synchronous prefix search below gives the same kind of result in a
fraction of the time. A test checks it against exhaustive search on small inputs.
"""

from __future__ import annotations

import numpy as np

NEG_INF = -np.inf


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + float(np.log1p(np.exp(-abs(a - b))))


def ctc_prefix_beam_search(log_probs: np.ndarray, beam: int = 10, token_beam: int | None = None,
                           blank: int = 0) -> list[tuple[tuple[int, ...], float]]:
    """``log_probs`` (T, V) log-softmax outputs -> up to ``beam`` (prefix, log prob) pairs,
    best first. ``token_beam`` limits the tokens tried per frame to the most likely ones
    (default: ``beam``)."""
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must be (T, V), got shape {log_probs.shape}")
    token_beam = token_beam or beam
    # prefix -> (log p ending in blank, log p ending in non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for t in range(log_probs.shape[0]):
        lp = log_probs[t]
        cand = np.argpartition(-lp, min(token_beam, len(lp) - 1))[:token_beam]
        if blank not in cand:
            cand = np.append(cand, blank)
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix, pb, pnb):
            cur = nxt.get(prefix)
            if cur is None:
                nxt[prefix] = [pb, pnb]
            else:
                cur[0] = _logaddexp(cur[0], pb)
                cur[1] = _logaddexp(cur[1], pnb)

        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            for c in cand:
                c = int(c)
                p = float(lp[c])
                if c == blank:
                    add(prefix, total + p, NEG_INF)
                    continue
                last = prefix[-1] if prefix else None
                ext = prefix + (c,)
                if c == last:
                    # a repeat extends only from a blank-ended path; otherwise it merges
                    add(ext, NEG_INF, pb + p)
                    add(prefix, NEG_INF, pnb + p)
                else:
                    add(ext, NEG_INF, total + p)
        scored = [(k, v, _logaddexp(v[0], v[1])) for k, v in nxt.items()]
        ranked = sorted((x for x in scored if x[2] > NEG_INF), key=lambda x: -x[2])[:beam]
        beams = {k: (v[0], v[1]) for k, v, _ in ranked}
    out = [(k, _logaddexp(*v)) for k, v in beams.items()]
    return sorted(out, key=lambda kv: -kv[1])
