"""The network of ``rsqasr.models`` inside what training and decoding need around it: global
CMVN (espnet2's GlobalMVN, stats in the checkpoint), SpecAugment (espnet2's SpecAug, training
only) and the CTC loss (torch's built-in, as espnet2's CTC with ctc_type=builtin; the network's
own classifier produces the logits, so espnet2's CTC module, which adds a Linear, is not used).
"""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import torch
import torch.nn.functional as F
from espnet2.asr.specaug.specaug import SpecAug
from espnet2.layers.global_mvn import GlobalMVN


def cmvn_ark_to_npy(cmvn_ark: str | Path, npy: str | Path) -> Path:
    """Kaldi global CMVN stats (what compute_cmvn writes) -> the .npy GlobalMVN reads."""
    stats = kaldiio.load_mat(str(cmvn_ark))
    if stats.ndim != 2 or stats.shape[0] != 2:
        raise ValueError(f"{cmvn_ark}: not Kaldi global CMVN stats (shape {stats.shape})")
    np.save(npy, stats)
    return Path(npy)


class CTCModel(torch.nn.Module):
    def __init__(self, net: torch.nn.Module, cmvn_npy: str | Path, specaug: dict | None):
        super().__init__()
        self.normalize = GlobalMVN(str(cmvn_npy), norm_means=True, norm_vars=True)
        self.specaug = SpecAug(**specaug) if specaug else None
        self.net = net

    def logits(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lens = self.normalize(feats, feat_lens)
        if self.specaug is not None and self.training:
            x, lens = self.specaug(x, lens)
        return self.net(x, lens)

    def forward(self, feats, feat_lens, targets, target_lens) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-utterance CTC losses (B,), and the logits and their lengths."""
        logits, out_lens = self.logits(feats, feat_lens)
        # in float32 even under a bf16 autocast (a no-op in FP32 training): CTC needs the precision
        log_probs = logits.float().log_softmax(dim=-1).transpose(0, 1)  # (T, B, V)
        flat = torch.cat([targets[i, : target_lens[i]] for i in range(targets.shape[0])])
        losses = F.ctc_loss(log_probs, flat, out_lens, target_lens, blank=0, reduction="none", zero_infinity=False)
        return losses, logits, out_lens


def greedy_ids(logits: torch.Tensor, out_lens: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks (id 0)."""
    best = logits.argmax(dim=-1).cpu().numpy()
    out = []
    for b in range(best.shape[0]):
        seq = best[b, : int(out_lens[b])]
        keep = np.ones(len(seq), dtype=bool)
        keep[1:] = seq[1:] != seq[:-1]
        out.append([int(t) for t in seq[keep] if t != 0])
    return out
