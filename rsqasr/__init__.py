"""rsqasr: Conv1D CTC speech recognition with Range-Scaled Quantization and INT8 Winograd export."""

__version__ = "0.1.0"
