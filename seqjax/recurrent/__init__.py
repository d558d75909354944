"""Recurrent networks: cells, their runners over time, and initialization strategies."""

from seqjax.recurrent.cells import ElmanCell, GRUCell, LSTMCell, RecurrentCell
from seqjax.recurrent.init import INITIALIZERS, Spectrum, initializer, spectrum
from seqjax.recurrent.language_model import RNNLanguageModel, RNNLanguageModelState
from seqjax.recurrent.rnn import RNN, Bidirectional
from seqjax.recurrent.stacked import KINDS, StackedRNN, make_cell

__all__ = [
  "INITIALIZERS",
  "KINDS",
  "RNN",
  "Bidirectional",
  "ElmanCell",
  "GRUCell",
  "LSTMCell",
  "RNNLanguageModel",
  "RNNLanguageModelState",
  "RecurrentCell",
  "Spectrum",
  "StackedRNN",
  "initializer",
  "make_cell",
  "spectrum",
]
