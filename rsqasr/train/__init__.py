"""CTC training: configuration, the training loop with exact resume, DDP, checkpoint averaging."""
