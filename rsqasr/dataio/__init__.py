"""Training and decoding data: Kaldi feats/text to padded batches, length-bucketed sampling."""
