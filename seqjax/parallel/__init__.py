"""Parallel-scan recurrences: minGRU, minLSTM, LRU, on a linear scan run sequentially or associatively."""

from seqjax.parallel.layers import LRU, MinGRU, MinLSTM
from seqjax.parallel.scan import MODES, linear_scan, log_linear_scan

__all__ = ["LRU", "MODES", "MinGRU", "MinLSTM", "linear_scan", "log_linear_scan"]
