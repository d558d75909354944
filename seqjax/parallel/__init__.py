"""Parallel-scan recurrences: minGRU, minLSTM, LRU, on a linear scan run sequentially or associatively,
and the residual block stack they are used in."""

from seqjax.parallel.blocks import ScanBlockStack
from seqjax.parallel.layers import LRU, MinGRU, MinLSTM
from seqjax.parallel.scan import MODES, linear_scan, log_linear_scan

__all__ = ["LRU", "MODES", "MinGRU", "MinLSTM", "ScanBlockStack", "linear_scan", "log_linear_scan"]
