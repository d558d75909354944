"""`Uncached(lm)`: the decoding protocol for any causal language model lm(tokens [B, T]) ->
logits [B, T, V] that has no incremental state of its own (a dilated CNN, a parallel-scan
stack, ...). Each step reruns the model on the whole token buffer [B, L] and reads the logits at
each row's newest position: exact for every causal model (position t reads tokens <= t only, so
the buffer's unwritten tail cannot matter), at the cost of a full forward pass per token. One
compiled loop all the same: the buffer's shape is fixed by max_length.

The three functions below are the whole method; `seqjax.heads.SequenceLM` uses them too.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate


class UncachedState(NamedTuple):
  tokens: jax.Array  # [B, L] each row's tokens from position 0; past `length` unwritten
  length: jax.Array  # [B] int32: how many tokens each row holds


def empty_buffer(batch: int, max_length: int) -> UncachedState:
  return UncachedState(jnp.zeros((batch, max_length), jnp.int32), jnp.zeros((batch,), jnp.int32))


def write_prompt(state: UncachedState, tokens: jax.Array, mask: jax.Array) -> UncachedState:
  """Writes each row's real prompt tokens (mask True: a suffix, after left padding) from position 0."""
  P = tokens.shape[1]
  length = mask.sum(axis=1).astype(jnp.int32)  # [B]
  source = (jnp.arange(P)[None, :] + (P - length)[:, None]) % P  # [B, P]: real tokens first
  moved = jnp.take_along_axis(tokens.astype(jnp.int32), source, axis=1)
  return UncachedState(state.tokens.at[:, :P].set(moved), length)


def rerun_step(lm: Callable, state: UncachedState, tokens: jax.Array) -> tuple[jax.Array, UncachedState]:
  """tokens [B] -> (next-token logits [B, V], state): writes them at each row's length, reruns lm."""
  rows = jnp.arange(tokens.shape[0])
  buffer = state.tokens.at[rows, state.length].set(tokens.astype(jnp.int32))  # [B, L]
  logits = lm(buffer)[rows, state.length]  # [B, L, V] -> [B, V]
  return logits, UncachedState(buffer, state.length + 1)


class Uncached(nnx.Module):
  def __init__(self, lm: nnx.Module, vocab_size: int):
    _validate.positive_int("vocab_size", vocab_size)
    self.lm = lm
    self.vocab_size = vocab_size

  @property
  def decode_vocab(self) -> int:
    return self.vocab_size

  def check_decode_inputs(self, batch: int) -> None:
    """A language model takes no context: only the prompt, checked by the decoder."""

  def init_state(self, batch: int, max_length: int) -> UncachedState:
    return empty_buffer(batch, max_length)

  def prefill(self, state: UncachedState, tokens: jax.Array, mask: jax.Array) -> UncachedState:
    return write_prompt(state, tokens, mask)

  def step(self, state: UncachedState, tokens: jax.Array) -> tuple[jax.Array, UncachedState]:
    return rerun_step(self.lm, state, tokens)
