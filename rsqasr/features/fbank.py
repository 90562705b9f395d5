"""Kaldi-compatible log-mel filterbank features through kaldi-native-fbank.

Settings follow Kaldi's ``compute-fbank-feats`` defaults (25 ms Povey window, 10 ms shift,
pre-emphasis 0.97, DC removal, snip_edges, mel filters from 20 Hz to Nyquist, power spectrum,
log floored at float32's epsilon) with 80 bins, applied to int16-valued samples as Kaldi does.
Dither is 0 so features are deterministic (Kaldi's default is 1.0; the model sees SpecAugment
instead). ``fbank_settings`` is the one place these values live: stage 2 builds its
kaldi-native-fbank options from it and the export writes it into the model file (FBNK), from
which ``rsq-decode`` computes the same features from audio (``src_arm/app/fbank.c``).
"""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np


def fbank_settings(num_mel_bins: int = 80, sample_rate: int = 16000, frame_length_ms: float = 25.0,
                   frame_shift_ms: float = 10.0, dither: float = 0.0) -> dict:
    """Every option of the recipe's fbank, Kaldi's names (high_freq 0: Nyquist)."""
    return {"sample_rate": int(sample_rate), "num_mel_bins": int(num_mel_bins),
            "frame_length_ms": float(frame_length_ms), "frame_shift_ms": float(frame_shift_ms),
            "dither": float(dither), "window_type": "povey", "preemph_coeff": 0.97, "remove_dc_offset": True,
            "snip_edges": True, "round_to_power_of_two": True, "low_freq": 20.0, "high_freq": 0.0,
            "use_power": True, "use_log_fbank": True, "use_energy": False,
            "log_floor": float(np.finfo(np.float32).eps)}


def fbank_options(num_mel_bins: int = 80, sample_rate: int = 16000, frame_length_ms: float = 25.0,
                  frame_shift_ms: float = 10.0, dither: float = 0.0) -> knf.FbankOptions:
    s = fbank_settings(num_mel_bins, sample_rate, frame_length_ms, frame_shift_ms, dither)
    opts = knf.FbankOptions()
    f, m = opts.frame_opts, opts.mel_opts
    f.samp_freq = s["sample_rate"]
    f.frame_length_ms = s["frame_length_ms"]
    f.frame_shift_ms = s["frame_shift_ms"]
    f.dither = s["dither"]
    f.window_type = s["window_type"]
    f.preemph_coeff = s["preemph_coeff"]
    f.remove_dc_offset = s["remove_dc_offset"]
    f.snip_edges = s["snip_edges"]
    f.round_to_power_of_two = s["round_to_power_of_two"]
    m.num_bins = s["num_mel_bins"]
    m.low_freq = s["low_freq"]
    m.high_freq = s["high_freq"]
    opts.use_power = s["use_power"]
    opts.use_log_fbank = s["use_log_fbank"]
    opts.use_energy = s["use_energy"]
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
