"""A recurrent language model: token embedding, a `StackedRNN`, a linear readout to the vocabulary."""

from typing import NamedTuple

import jax
from flax import nnx

from seqjax import _validate
from seqjax.decoding.protocol import prefill_by_steps
from seqjax.recurrent.stacked import StackedRNN


class RNNLanguageModelState(NamedTuple):
  """Decoding state: each layer's carry ([B, H]; LSTM: (c, h))."""

  carries: tuple


class RNNLanguageModel(nnx.Module):
  """lm(tokens [B, T]) -> next-token logits [B, T, V].

  Training runs the stack with `lax.scan` over T; decoding (`seqjax.decoding`) steps its cells
  one token at a time inside one compiled loop. `cell_options` go to every cell (inits,
  forget_bias, ...); dropout_rate drops between layers when a dropout_key is given.
  """

  def __init__(
    self,
    vocab_size: int,
    embed_dim: int,
    hidden_features: int,
    *,
    kind: str = "lstm",
    num_layers: int = 1,
    dropout_rate: float = 0.0,
    rngs: nnx.Rngs,
    **cell_options,
  ):
    _validate.positive_int("vocab_size", vocab_size)
    _validate.positive_int("embed_dim", embed_dim)
    self.embed = nnx.Embed(vocab_size, embed_dim, rngs=rngs)
    self.rnn = StackedRNN(
      kind, embed_dim, hidden_features, num_layers=num_layers, dropout_rate=dropout_rate, rngs=rngs, **cell_options
    )
    self.readout = nnx.Linear(hidden_features, vocab_size, rngs=rngs)
    self.vocab_size = vocab_size

  def __call__(self, tokens: jax.Array, *, dropout_key: jax.Array | None = None) -> jax.Array:
    _validate.token_ids("tokens", tokens, self.vocab_size)
    x, _ = self.rnn(self.embed(tokens), dropout_key=dropout_key)  # [B, T, H]
    return self.readout(x)  # [B, T, V]

  # ---- the decoding protocol (seqjax.decoding.protocol) ----------------------------------------

  @property
  def decode_vocab(self) -> int:
    return self.vocab_size

  def check_decode_inputs(self, batch: int) -> None:
    """A language model takes no context: only the prompt, checked by the decoder."""

  def init_state(self, batch: int, max_length: int | None = None) -> RNNLanguageModelState:
    """Every layer's initial carry; max_length is unused (the state does not grow)."""
    del max_length
    return RNNLanguageModelState(tuple(layer.cell.initialize_carry((batch,)) for layer in self.rnn.layers))

  def step(self, state: RNNLanguageModelState, tokens: jax.Array) -> tuple[jax.Array, RNNLanguageModelState]:
    """tokens [B] -> (next-token logits [B, V], state): one step of every layer's cell."""
    x = self.embed(tokens)  # [B, E]
    carries = []
    for layer, carry in zip(self.rnn.layers, state.carries, strict=True):
      carry, x = layer.cell(carry, x)
      carries.append(carry)
    return self.readout(x), RNNLanguageModelState(tuple(carries))

  def prefill(self, state: RNNLanguageModelState, tokens: jax.Array, mask: jax.Array) -> RNNLanguageModelState:
    return prefill_by_steps(self, state, tokens, mask)
