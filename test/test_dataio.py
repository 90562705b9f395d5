"""Tests of the length-bucketed batch sampler (rsqasr.dataio.dataset.BucketBatchSampler)."""
from __future__ import annotations

from rsqasr.dataio.dataset import BucketBatchSampler


def _frames(n: int = 50) -> dict[str, int]:
    return {f"u{i:03d}": 100 + (i * 37) % 400 for i in range(n)}


def _lengths(sampler: BucketBatchSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return [max(sampler_frames[u] for u in b) for b in sampler]


sampler_frames = _frames()


def test_batches_respect_limits_and_cover_every_utterance():
    s = BucketBatchSampler(sampler_frames, batch_size=4, max_frames=1200)
    seen = [u for b in s.batches for u in b]
    assert sorted(seen) == sorted(sampler_frames)
    for b in s.batches:
        assert len(b) <= 4
        assert len(b) == 1 or max(sampler_frames[u] for u in b) * len(b) <= 1200


def test_sortagrad_first_epochs_short_to_long_then_shuffled():
    s = BucketBatchSampler(sampler_frames, batch_size=4, seed=3, sorted_epochs=2)
    for epoch in (1, 2):
        lens = _lengths(s, epoch)
        assert lens == sorted(lens)
    later = _lengths(s, 3)
    assert later != sorted(later) and sorted(later) == sorted(_lengths(s, 1))
    plain = BucketBatchSampler(sampler_frames, batch_size=4, seed=3)
    first = _lengths(plain, 1)
    assert first != sorted(first)  # without SortaGrad the first epoch is shuffled too


def test_resume_mid_epoch_continues_the_same_order():
    s = BucketBatchSampler(sampler_frames, batch_size=4, seed=3, sorted_epochs=1)
    for epoch in (1, 2):
        s.set_epoch(epoch)
        full = list(s)
        s.set_epoch(epoch, start=5)
        assert list(s) == full[5:]
