"""Kaldi-compatible log-mel filterbank features through kaldi-native-fbank.

Settings follow Kaldi's ``compute-fbank-feats`` defaults (25 ms Povey window, 10 ms shift,
pre-emphasis 0.97, DC removal, snip_edges) with 80 bins, applied to int16-valued samples as
Kaldi does. Dither is 0 so features are deterministic (Kaldi's default is 1.0; the model
sees SpecAugment instead).
"""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np


def fbank_options(num_mel_bins: int = 80, sample_rate: int = 16000, frame_length_ms: float = 25.0,
                  frame_shift_ms: float = 10.0, dither: float = 0.0) -> knf.FbankOptions:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = sample_rate
    opts.frame_opts.frame_length_ms = frame_length_ms
    opts.frame_opts.frame_shift_ms = frame_shift_ms
    opts.frame_opts.dither = dither
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = num_mel_bins
    return opts


def compute_fbank(samples: np.ndarray, opts: knf.FbankOptions) -> np.ndarray:
    """int16 samples -> float32 (frames, num_mel_bins). Fewer samples than one frame give 0 rows."""
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(opts.frame_opts.samp_freq, samples.astype(np.float32))
    fb.input_finished()
    n = fb.num_frames_ready
    out = np.empty((n, opts.mel_opts.num_bins), dtype=np.float32)
    for i in range(n):
        out[i] = fb.get_frame(i)
    return out
