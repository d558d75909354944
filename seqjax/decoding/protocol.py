"""The one protocol every decodable model here speaks (`GPT`, `EncoderDecoder`, `Seq2Seq`,
`RNNLanguageModel`), so that greedy, sampling and beam search are written once:

    model.decode_vocab                                   the vocabulary the logits range over
    model.check_decode_inputs(batch, **context)          ValueError on bad context (run before jit)
    state = model.init_state(batch, max_length, **context)
                  the per-sequence work: encode the source and project its keys/values once
                  (encoder-decoders), empty caches sized for max_length decoder positions
    state = model.prefill(state, tokens [B, P], mask [B, P])
                  reads a prompt; mask False marks left padding, so rows may differ in length
    logits [B, V], state = model.step(state, tokens [B])

context is the model's conditioning input (`src`, `src_mask` for encoder-decoders; nothing for
language models): the keyword-only arguments of check_decode_inputs, whose required ones the
decoders ask for by name before anything else reads the context. A state is a NamedTuple whose
leaves are scalars (shared by the batch) or carry the batch as their leading axis: beam search
repeats and reorders rows by that axis alone.
"""

from typing import Any, Protocol

import jax
import jax.numpy as jnp


class Decodable(Protocol):
  @property
  def decode_vocab(self) -> int: ...

  def check_decode_inputs(self, batch: int, **context) -> None: ...

  def init_state(self, batch: int, max_length: int, **context) -> Any: ...

  def prefill(self, state: Any, tokens: jax.Array, mask: jax.Array) -> Any: ...

  def step(self, state: Any, tokens: jax.Array) -> tuple[jax.Array, Any]: ...


def prefill_by_steps(model: Decodable, state, tokens: jax.Array, mask: jax.Array):
  """A recurrent decoder's prefill: `step` over the prompt's columns, each row's state left as it
  was where mask is False (its left padding). Every leaf of the state must be per row."""

  def body(state, column):
    tokens, real = column  # [B], [B]
    _, stepped = model.step(state, tokens)
    keep = lambda new, old: jnp.where(real.reshape(real.shape + (1,) * (new.ndim - 1)), new, old)  # noqa: E731
    return jax.tree.map(keep, stepped, state), None

  state, _ = jax.lax.scan(body, state, (tokens.T, mask.T))  # over P
  return state
