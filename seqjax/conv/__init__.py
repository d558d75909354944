"""The convolutional road: stacks of dilated 1-D convolutions over sequences (WaveNet, ByteNet)."""

from seqjax.conv.dilated import DilatedConvStack

__all__ = ["DilatedConvStack"]
