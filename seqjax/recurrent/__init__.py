"""Recurrent networks: cells, their runners over time, and initialization strategies."""

from seqjax.recurrent.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell
from seqjax.recurrent.init import INITIALIZERS, Spectrum, initializer, spectrum
from seqjax.recurrent.language_model import RNNLanguageModel
from seqjax.recurrent.rnn import CELL_CONTRACT, RNN, Bidirectional, check_cell, mask_lengths
from seqjax.recurrent.stacked import KINDS, StackedRNN, make_cell

__all__ = [
  "CELL_CONTRACT",
  "INITIALIZERS",
  "KINDS",
  "RNN",
  "Bidirectional",
  "ElmanCell",
  "GRUCell",
  "LSTMCell",
  "RNNLanguageModel",
  "RecurrentCell",
  "Spectrum",
  "StackedRNN",
  "check_cell",
  "initializer",
  "make_cell",
  "mask_lengths",
  "spectrum",
]
