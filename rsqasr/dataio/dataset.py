"""A dataset over a Kaldi data dir with features (feats.scp, utt2num_frames, text) and a
length-bucketed batch sampler whose position can be saved and restored exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import kaldiio
import numpy as np
import torch

from rsqasr.data.datadir import DataDirError, read_kv
from rsqasr.dataio.text import TextProcessor


@dataclass
class Utterance:
    utt: str
    feats: np.ndarray  # (frames, dim) float32
    tokens: list[int]


class FeatsTextDataset:
    """``data_dir/feats.scp`` (+ ``utt2num_frames``, ``text`` when ``text`` is needed)."""

    def __init__(self, data_dir: str | Path, text: TextProcessor | None, feat_dim: int | None = None):
        self.data_dir = Path(data_dir)
        feats_scp = self.data_dir / "feats.scp"
        self.feats = read_kv(feats_scp)
        n2f = self.data_dir / "utt2num_frames"
        if n2f.is_file():
            lens = read_kv(n2f)
            try:
                self.num_frames = {u: int(lens[u]) for u in self.feats}
            except KeyError as e:
                raise DataDirError(f"{n2f}: no entry for {e.args[0]} of {feats_scp}") from e
            except ValueError as e:
                raise DataDirError(f"{n2f}: {e}") from e
        else:
            self.num_frames = {u: int(kaldiio.load_mat(p).shape[0]) for u, p in self.feats.items()}
        self.text = text
        self.transcripts: dict[str, str] = {}
        if text is not None:
            tpath = self.data_dir / "text"
            self.transcripts = read_kv(tpath)
            missing = [u for u in self.feats if u not in self.transcripts]
            if missing:
                raise DataDirError(f"{tpath}: no transcript for {len(missing)} utterances of {feats_scp} "
                                   f"(e.g. {missing[0]}); run utils/fix_data_dir.sh {self.data_dir}")
        self.feat_dim = feat_dim
        self.keys = list(self.feats)

    def __len__(self) -> int:
        return len(self.keys)

    def load(self, utt: str) -> Utterance:
        try:
            mat = kaldiio.load_mat(self.feats[utt])
        except Exception as e:  # noqa: BLE001 - any reader error is bad input
            raise DataDirError(f"{self.data_dir / 'feats.scp'}: cannot read '{utt}': {e}") from e
        if mat.ndim != 2 or (self.feat_dim is not None and mat.shape[1] != self.feat_dim):
            raise DataDirError(f"{self.data_dir / 'feats.scp'}: '{utt}' has features of shape {mat.shape}, "
                               f"the model expects dimension {self.feat_dim}")
        tokens = self.text.encode(self.transcripts[utt]) if self.text is not None else []
        return Utterance(utt, np.asarray(mat, dtype=np.float32), tokens)


def collate(batch: list[Utterance]) -> dict:
    """Pad to the longest utterance: feats (B, T, D), feat_lens (B,), targets (B, L) padded with
    -1, target_lens (B,), utts."""
    lens = torch.tensor([u.feats.shape[0] for u in batch], dtype=torch.long)
    feats = torch.zeros(len(batch), int(lens.max()), batch[0].feats.shape[1])
    for i, u in enumerate(batch):
        feats[i, : u.feats.shape[0]] = torch.from_numpy(np.array(u.feats))
    tlens = torch.tensor([len(u.tokens) for u in batch], dtype=torch.long)
    targets = torch.full((len(batch), max(1, int(tlens.max()))), -1, dtype=torch.long)
    for i, u in enumerate(batch):
        targets[i, : len(u.tokens)] = torch.tensor(u.tokens, dtype=torch.long)
    return {"utts": [u.utt for u in batch], "feats": feats, "feat_lens": lens, "targets": targets, "target_lens": tlens}


class BucketBatchSampler:
    """Batches of utterances of similar length: sorted by frames, cut into batches holding at
    most ``batch_size`` utterances and ``max_frames`` padded frames (0 = no frame limit); the
    order of batches is shuffled per epoch with ``seed + epoch``, except in the first
``sorted_epochs`` epochs (numbered from 1), which go from the shortest batch to the longest
(SortaGrad, Amodei et al. 2016: CTC leaves its all-blank plateau sooner on short utterances). With ``world_size`` > 1 each
    rank takes every world_size-th batch (the batch count is rounded down to a multiple of
    world_size so ranks stay in step). ``start`` skips the first batches of an epoch: that is
    how a resumed run continues mid-epoch.
    """

    def __init__(self, num_frames: dict[str, int], batch_size: int, max_frames: int = 0, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, sorted_epochs: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        keys = sorted(num_frames, key=lambda u: (num_frames[u], u))
        self.batches: list[list[str]] = []
        cur: list[str] = []
        for u in keys:
            n = num_frames[u]
            if cur and (len(cur) >= batch_size or (max_frames and n * (len(cur) + 1) > max_frames)):
                self.batches.append(cur)
                cur = []
            cur.append(u)
        if cur:
            self.batches.append(cur)
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, seed, rank, world_size
        self.sorted_epochs = sorted_epochs
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def epoch_batches(self) -> list[list[str]]:
        order = np.arange(len(self.batches))
        if self.shuffle and self.epoch > self.sorted_epochs:
            order = np.random.default_rng(self.seed + self.epoch).permutation(len(self.batches))
        usable = (len(order) // self.world_size) * self.world_size
        return [self.batches[i] for i in order[:usable][self.rank:: self.world_size]]

    def __len__(self) -> int:
        return math.floor(len(self.batches) / self.world_size)

    def __iter__(self):
        yield from self.epoch_batches()[self.start:]
