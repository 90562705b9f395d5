"""Global CMVN statistics in Kaldi's format (what ``compute-cmvn-stats`` writes for a global
set): a float64 matrix of shape (2, D+1): row 0 = per-dimension sums and the frame count in the
last column, row 1 = per-dimension sums of squares (last column 0). espnet2's GlobalMVN reads
the same matrix (saved with numpy) to normalize features.
"""

from __future__ import annotations

import numpy as np


class CMVNStats:
    def __init__(self, dim: int):
        self.stats = np.zeros((2, dim + 1), dtype=np.float64)

    def accumulate(self, feats: np.ndarray) -> None:
        if feats.ndim != 2 or feats.shape[1] != self.stats.shape[1] - 1:
            raise ValueError(f"features of shape {feats.shape} do not match CMVN dim {self.stats.shape[1] - 1}")
        x = feats.astype(np.float64)
        self.stats[0, :-1] += x.sum(axis=0)
        self.stats[0, -1] += x.shape[0]
        self.stats[1, :-1] += (x * x).sum(axis=0)


def mean_std(stats: np.ndarray, floor: float = 1.0e-20) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per dimension from a Kaldi global CMVN stats matrix."""
    count = stats[0, -1]
    if count <= 0:
        raise ValueError("CMVN stats have a zero frame count")
    mean = stats[0, :-1] / count
    var = stats[1, :-1] / count - mean * mean
    return mean, np.sqrt(np.maximum(var, floor))
