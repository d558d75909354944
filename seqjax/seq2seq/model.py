"""Recurrent encoder-decoders: Sutskever et al. 2014 (one fixed context vector), Bahdanau et al.
2014 (additive attention over a bidirectional encoder), Luong et al. 2015 (dot/general/concat
scores, global or local windows, input feeding).

Each speaks the decoding protocol of `seqjax.decoding.protocol` (context: src [B, S], src_mask [B, S]).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from seqjax import _validate
from seqjax.decoding.protocol import prefill_by_steps
from seqjax.recurrent.rnn import mask_lengths
from seqjax.recurrent.scan import flip_sequences
from seqjax.recurrent.stacked import StackedRNN, make_cell
from seqjax.seq2seq.attention import SCORES, WINDOWS, LuongPosition, Score, attend
from seqjax.train.losses import token_cross_entropy

ATTENTIONS = ("none", "bahdanau", "luong")
NAMED_ATTENTIONS = {  # the seed's table of attention variants, as Seq2SeqConfig options
  "Bahdanau (additive)": {"attention": "bahdanau"},
  "Luong dot": {"attention": "luong", "score": "dot"},
  "Luong general": {"attention": "luong", "score": "general"},
  "Luong concat": {"attention": "luong", "score": "concat"},
  "Luong general, local-m": {"attention": "luong", "score": "general", "window": "local_m"},
  "Luong general, local-p": {"attention": "luong", "score": "general", "window": "local_p"},
}


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig:
  source_vocab_size: int
  target_vocab_size: int
  embed_dim: int = 64
  hidden_features: int = 128
  num_layers: int = 1
  cell: str = "lstm"  # lstm | gru
  attention: str = "none"  # none (the fixed-context bottleneck) | bahdanau | luong
  score: str = "general"  # luong: dot | general | concat (bahdanau is always additive)
  window: str = "global"  # luong: global | local_m | local_p
  window_half_width: int = 5  # D of the local window [p_t - D, p_t + D]
  input_feeding: bool = True  # luong: feed the last attentional vector to the next step
  bidirectional_encoder: bool = False
  reverse_source: bool = False  # Sutskever et al.'s trick

  def check(self) -> "Seq2SeqConfig":
    _validate.fields(
      self,
      positive=("source_vocab_size", "target_vocab_size", "embed_dim", "hidden_features", "num_layers"),
      nonnegative=("window_half_width",),
      booleans=("input_feeding", "bidirectional_encoder", "reverse_source"),
      cell=("lstm", "gru"),
      attention=ATTENTIONS,
      score=SCORES[1:],
      window=WINDOWS,
    )
    return self


class Seq2SeqState(NamedTuple):
  """The decoder's state and the encoded source it attends to (every leaf per row)."""

  carries: tuple  # per decoder layer: the cell's carry [B, H] (LSTM: (c, h))
  feed: jax.Array  # [B, H]: Luong's last attentional vector (input feeding)
  step: jax.Array  # [B] int32: decoder steps taken (local-m's window center)
  memory: jax.Array  # [B, S, D_mem]: encoder states
  memory_keys: jax.Array | None  # [B, S, ...]: the score's projection of memory, computed once
  memory_mask: jax.Array  # [B, S] bool: the source's real tokens
  memory_lengths: jax.Array  # [B] int32


class Seq2Seq(nnx.Module):
  """model(src [B, S], tgt_in [B, T], src_mask [B, S]) -> (logits [B, T, V], attention [B, T, S]).

  tgt_in is the target shifted right (BOS first): teacher forcing. attention holds each output
  step's weights over the source (zeros without attention).
  """

  def __init__(self, config: Seq2SeqConfig, *, rngs: nnx.Rngs):
    c = config.check()
    H, E = c.hidden_features, c.embed_dim
    memory_dim = 2 * H if c.bidirectional_encoder else H
    self.config = c
    self.source_embed = nnx.Embed(c.source_vocab_size, E, rngs=rngs)
    self.target_embed = nnx.Embed(c.target_vocab_size, E, rngs=rngs)
    self.encoder = StackedRNN(c.cell, E, H, num_layers=c.num_layers, bidirectional=c.bidirectional_encoder, rngs=rngs)
    # bidirectional: decoder layer l starts from tanh(W [h_fwd; h_bwd]) (Bahdanau's s_0)
    self.bridge = nnx.Linear(2 * H, H, rngs=rngs) if c.bidirectional_encoder else None
    extra = {"none": 0, "bahdanau": memory_dim, "luong": H if c.input_feeding else 0}[c.attention]
    self.decoder = nnx.List(
      [make_cell(c.cell, (E + extra) if layer == 0 else H, H, rngs=rngs) for layer in range(c.num_layers)]
    )
    score = "additive" if c.attention == "bahdanau" else c.score
    self.score = Score(score, H, memory_dim, rngs=rngs) if c.attention != "none" else None
    luong = c.attention == "luong"
    self.combine = nnx.Linear(memory_dim + H, H, use_bias=False, rngs=rngs) if luong else None  # W_c [c; h]
    self.position = LuongPosition(H, rngs=rngs) if luong and c.window == "local_p" else None
    out_features = H + memory_dim if c.attention == "bahdanau" else H
    self.output = nnx.Linear(out_features, c.target_vocab_size, rngs=rngs)

  # ---- encoder ------------------------------------------------------------------------------

  def check_decode_inputs(self, batch: int, *, src: jax.Array, src_mask: jax.Array | None = None) -> None:
    """src: ids [B, S] in the source vocabulary; src_mask: [B, S] bool, each row's real tokens a
    prefix (the encoder reads lengths). Values are checked when concrete."""
    _validate.token_ids("src", src, self.config.source_vocab_size)
    if src.shape[0] != batch:
      raise ValueError(f"src batch {src.shape[0]} must equal the target batch {batch}")
    if src_mask is not None:
      _validate.bool_mask("src_mask", src_mask, src.shape)
      _validate.prefix_mask("src_mask", src_mask)

  def init_state(self, batch: int, max_length: int | None = None, *, src, src_mask=None) -> Seq2SeqState:
    """Encodes src [B, S] -> the decoder's initial state. max_length is unused (no cache to size)."""
    del max_length
    self.check_decode_inputs(batch, src=src, src_mask=src_mask)
    src_mask = jnp.ones(src.shape, jnp.bool_) if src_mask is None else src_mask
    lengths = mask_lengths(src_mask)  # [B]; the mask, checked above, is a prefix of real tokens
    x = self.source_embed(src)  # [B, S, E]
    if self.config.reverse_source:
      x = jnp.swapaxes(flip_sequences(jnp.swapaxes(x, 0, 1), lengths), 0, 1)
    states, carries = self.encoder.scan(x, lengths)  # [B, S, D_mem]
    if self.bridge is not None:  # concatenate directions, project to the decoder's size
      carries = tuple(
        jax.tree.map(lambda f, b: jnp.tanh(self.bridge(jnp.concatenate([f, b], -1))), *layer) for layer in carries
      )
    H = self.config.hidden_features
    return Seq2SeqState(
      carries=carries,
      feed=jnp.zeros((batch, H)),
      step=jnp.zeros((batch,), jnp.int32),
      memory=states,
      memory_keys=None if self.score is None else self.score.precompute(states),
      memory_mask=src_mask,
      memory_lengths=lengths,
    )

  # ---- one decoder step ------------------------------------------------------------------------

  @property
  def decode_vocab(self) -> int:
    return self.config.target_vocab_size

  def _attend(self, query, state: Seq2SeqState):
    c = self.config
    scores = self.score(query, state.memory, state.memory_keys)  # [B, S]
    center = None if self.position is None else self.position(query, state.memory_lengths)
    return attend(
      scores,
      state.memory,
      state.memory_mask,
      window=c.window if c.attention == "luong" else "global",
      step=state.step,
      center=center,
      half_width=c.window_half_width,
    )

  def step_with_attention(self, state: Seq2SeqState, tokens: jax.Array):
    """tokens [B] (the previous output) -> (logits [B, V], state, attention weights [B, S])."""
    c = self.config
    x = self.target_embed(tokens)  # [B, E]
    top = state.carries[-1][1] if c.cell == "lstm" else state.carries[-1]  # s_{i-1}: last layer's hidden state
    weights = jnp.zeros(state.memory_mask.shape)
    if c.attention == "bahdanau":
      weights, context = self._attend(top, state)  # attention from s_{i-1}
      x = jnp.concatenate([x, context], -1)
    elif c.attention == "luong" and c.input_feeding:
      x = jnp.concatenate([x, state.feed], -1)
    new_carries = []
    for cell, carry in zip(self.decoder, state.carries, strict=True):
      carry, x = cell(carry, x)
      new_carries.append(carry)
    feed = state.feed
    if c.attention == "bahdanau":
      logits = self.output(jnp.concatenate([x, context], -1))
    elif c.attention == "luong":
      weights, context = self._attend(x, state)  # attention from h_t
      feed = jnp.tanh(self.combine(jnp.concatenate([context, x], -1)))  # h~_t = tanh(W_c [c_t; h_t])
      logits = self.output(feed)
    else:
      logits = self.output(x)  # everything the decoder knows came through the initial carry
    state = state._replace(carries=tuple(new_carries), feed=feed, step=state.step + 1)
    return logits, state, weights

  def step(self, state: Seq2SeqState, tokens: jax.Array) -> tuple[jax.Array, Seq2SeqState]:
    logits, state, _ = self.step_with_attention(state, tokens)
    return logits, state

  def prefill(self, state: Seq2SeqState, tokens: jax.Array, mask: jax.Array) -> Seq2SeqState:
    return prefill_by_steps(self, state, tokens, mask)

  # ---- teacher forcing ---------------------------------------------------------------------------

  def __call__(self, src, tgt_in, src_mask=None):
    _validate.token_ids("tgt_in", tgt_in, self.config.target_vocab_size)
    state = self.init_state(tgt_in.shape[0], src=src, src_mask=src_mask)

    def body(state, tokens):
      logits, state, weights = self.step_with_attention(state, tokens)
      return state, (logits, weights)

    _, (logits, weights) = jax.lax.scan(body, state, jnp.swapaxes(tgt_in, 0, 1))  # over T
    return jnp.swapaxes(logits, 0, 1), jnp.swapaxes(weights, 0, 1)  # [B, T, V], [B, T, S]

  def teacher_forced_logits(self, src, tgt_in, *, src_mask=None, dropout_key=None) -> jax.Array:
    """[B, T, V] of a teacher-forced pass (`teacher_forced_loss`'s protocol); no dropout here."""
    del dropout_key
    return self(src, tgt_in, src_mask)[0]


def teacher_forced_loss(
  model, batch: dict, rng: jax.Array | None = None, *, label_smoothing: float = 0.0
) -> tuple[jax.Array, dict]:
  """Mean token cross-entropy of a `seqjax.data.batching.seq2seq_batch` under teacher forcing,
  as a `seqjax.train` loss_fn: -> (loss, {"tokens": real target tokens}). model: any with
  model.teacher_forced_logits(src, tgt_in, *, src_mask, dropout_key) -> logits [B, T, V], as
  `Seq2Seq` and `seqjax.transformer.EncoderDecoder` have (rng: the dropout key).
  label_smoothing: the target distribution's mass spread over the vocabulary (0.1 in the 2017
  paper; `functools.partial(teacher_forced_loss, label_smoothing=0.1)` is a loss_fn)."""
  logits = model.teacher_forced_logits(batch["src"], batch["tgt_in"], src_mask=batch["src_mask"], dropout_key=rng)
  loss, count = token_cross_entropy(logits, batch["tgt_out"], batch["tgt_mask"], label_smoothing=label_smoothing)
  return loss, {"tokens": count}
