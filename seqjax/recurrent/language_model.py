"""A recurrent language model: token embedding, a `StackedRNN`, a linear readout to the vocabulary."""

from flax import nnx
from flax.typing import Initializer

from seqjax import _validate
from seqjax.heads import SequenceLM
from seqjax.recurrent.stacked import StackedRNN

EMBEDDING_INIT = nnx.initializers.normal(stddev=1.0)


class RNNLanguageModel(SequenceLM):
  """lm(tokens [B, T]) -> next-token logits [B, T, V]: an embedding of embed_dim, a `StackedRNN`
  (`lm.rnn`) of `kind` (a name, or your own cell's factory: docs/recurrent.md) with
  hidden_features units, a linear readout. A `SequenceLM` in all but the order its parts draw
  their initial values: the embedding first, as this model always has.

  Training runs the stack with `lax.scan` over T; decoding (`seqjax.decoding`) steps its cells
  one token at a time inside one compiled loop. `cell_options` go to every cell (inits,
  forget_bias, ...); dropout_rate drops between layers when a dropout_key is given.

  The embedding is drawn N(0, 1) (`EMBEDDING_INIT`, PyTorch's `nn.Embedding`), not flax's
  N(0, 1/embed_dim): the recurrent cells' Xavier input kernels expect unit-scale inputs, and on
  experiments/charlm's batches flax's embedding alone costs a two-layer LSTM LM 0.67 bits/char
  (2.94 against 2.27: benchmarks/lstm_vs_torch, docs/experiments.md). `embedding_init` sets another.
  """

  def __init__(
    self,
    vocab_size: int,
    embed_dim: int,
    hidden_features: int,
    *,
    kind="lstm",
    num_layers: int = 1,
    dropout_rate: float = 0.0,
    embedding_init: Initializer = EMBEDDING_INIT,
    rngs: nnx.Rngs,
    **cell_options,
  ):
    _validate.positive_int("vocab_size", vocab_size)
    _validate.positive_int("embed_dim", embed_dim)
    self.embed = nnx.Embed(vocab_size, embed_dim, embedding_init=embedding_init, rngs=rngs)
    self.rnn = StackedRNN(
      kind, embed_dim, hidden_features, num_layers=num_layers, dropout_rate=dropout_rate, rngs=rngs, **cell_options
    )
    self.readout = nnx.Linear(hidden_features, vocab_size, rngs=rngs)
    self.vocab_size = vocab_size
    self.steps = True

  @property
  def stack(self) -> StackedRNN:
    """The mixer, as SequenceLM's methods read it."""
    return self.rnn
