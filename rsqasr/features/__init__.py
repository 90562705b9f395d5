"""Acoustic features (Kaldi-compatible fbank), global CMVN statistics and token lists."""
