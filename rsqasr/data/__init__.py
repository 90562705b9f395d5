"""Kaldi-format data directories, audio reading and corpus preparation."""
