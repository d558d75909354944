"""The mixer interface, the heads and the zoo: every registered architecture is a mixer that
keeps its padding and causality promises, the heads equal their parts run by hand, and a cell
defined here (an IndRNN) runs through long_range's and charlm's smoke configs by
`--models tests.test_zoo:build_indrnn`."""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax import decoding, zoo
from seqjax.heads import SequenceLM, SequencePredictor, TokenTagger
from seqjax.recurrent import RNNLanguageModel, StackedRNN
from seqjax.transformer import GPT
from tests.helpers import normal, run_workdir


class IndRNNCell(nnx.Module):
  """IndRNN (Li et al. 2018), written from the cell contract alone: h' = relu(x W + b + u * h)."""

  def __init__(self, in_features, hidden_features, *, rngs):
    self.in_features, self.hidden_features = in_features, hidden_features
    self.input = nnx.Linear(in_features, hidden_features, rngs=rngs)
    self.recurrent = nnx.Param(RECURRENT_SCALE * jax.random.uniform(rngs.params(), (hidden_features,)))

  def initialize_carry(self, batch_shape=()):
    return jnp.zeros((*batch_shape, self.hidden_features))

  def project_inputs(self, x):
    return self.input(x)

  def recur(self, h, projected):
    h = jax.nn.relu(projected + jnp.broadcast_to(self.recurrent[...], h.shape) * h)
    return h, h


def build_indrnn(width, *, causal, rngs):
  """A builder (seqjax.mixer): two IndRNN layers of `width` units."""
  return StackedRNN(IndRNNCell, width, width, num_layers=2, rngs=rngs)


B, T, D = 2, 7, 8
OPTIONS = {"dilated_cnn": {"num_layers": 3}}  # the others build from width alone


@pytest.mark.parametrize("name", sorted(zoo.REGISTRY))
def test_every_registered_architecture_is_a_mixer_that_keeps_its_promises(name):
  """[B, T, D] in, [B, T, out_features] out; right padding never changes a real output; a causal
  mixer's output at t never reads a later input; dropout_key accepted."""
  causal = name != "bilstm"
  mixer = zoo.resolve(name).builder(D, causal=causal, rngs=nnx.Rngs(0), **OPTIONS.get(name, {}))
  assert mixer.causal == causal
  x = jnp.asarray(normal(1, B, T, D))
  mask = jnp.arange(T)[None] < jnp.array([[T], [4]])  # row 1: 4 real steps
  padded = x.at[1, 4:].set(9.0)

  @nnx.jit  # one compile, not one per eager op
  def run(mixer):
    out = mixer(x, dropout_key=jax.random.key(0))
    changed = mixer(x.at[:, 5:].set(-3.0)) if causal else None
    return out, mixer(padded, mask=mask), mixer(x[1:, :4]), changed

  out, masked, alone, changed = run(mixer)
  assert out.shape == (B, T, mixer.out_features)
  np.testing.assert_allclose(masked[1, :4], alone[0], rtol=1e-5, atol=1e-5)
  if causal:
    np.testing.assert_allclose(changed[:, :5], out[:, :5], rtol=1e-5, atol=1e-6)


def test_a_builder_must_return_a_mixer_of_the_causality_asked_for():
  with pytest.raises(ValueError, match=r"bidirectional=True reads the whole sequence: it needs causal=False"):
    zoo.resolve("bilstm").builder(D, causal=True, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"test_zoo:.*was asked for a causal mixer \(causal=True\)"):
    SequenceLM(
      5,
      D,
      lambda width, *, causal, rngs: StackedRNN("gru", width, width, bidirectional=True, rngs=rngs),
      rngs=nnx.Rngs(0),
    )
  with pytest.raises(ValueError, match=r"mixer \(seqjax.mixer\); its result lacks causal \(True or False\)$"):
    SequenceLM(5, D, lambda width, *, causal, rngs: nnx.Linear(width, width, rngs=rngs), rngs=nnx.Rngs(0))


def test_specs_resolve_by_name_or_module_path_and_bad_ones_are_named():
  assert zoo.resolve("tests.test_zoo:build_indrnn").builder is build_indrnn
  assert zoo.resolve("lstm").source == "seqjax.zoo:lstm"
  with pytest.raises(
    ValueError, match=r"unknown architecture 'lstn': registered are \[.*'lstm'.*\], or give 'package.module:builder'"
  ):
    zoo.resolve("lstn")
  with pytest.raises(ValueError, match=r"cannot import module 'tests.no_such_module'"):
    zoo.resolve("tests.no_such_module:build")
  with pytest.raises(ValueError, match=r"module 'tests.test_zoo' has no 'build_gru'"):
    zoo.resolve("tests.test_zoo:build_gru")
  with pytest.raises(ValueError, match=r"must name a builder.*got 8"):
    zoo.resolve("tests.test_zoo:D")
  with pytest.raises(ValueError, match=r"an architecture named 'lstm' is registered already \(seqjax.zoo:lstm\)"):
    zoo.register("lstm", build_indrnn)
  with pytest.raises(ValueError, match="name must be a non-empty string without ':'"):
    zoo.register("mine:indrnn", build_indrnn)


def test_build_gives_the_familys_own_language_model_or_a_sequence_lm():
  assert isinstance(zoo.build("gpt", width=8, vocab=5, context=6, rngs=nnx.Rngs(0)), GPT)
  lm = zoo.build("tests.test_zoo:build_indrnn", width=8, vocab=5, context=6, rngs=nnx.Rngs(0))
  assert isinstance(lm, SequenceLM) and lm.steps
  assert not zoo.build("mingru", width=8, vocab=5, context=6, rngs=nnx.Rngs(0)).steps


def test_language_model_embeddings_rnn_unit_normal_others_flax_default_or_chosen():
  """RNNLanguageModel draws its embedding N(0, 1) (torch's nn.Embedding: flax's N(0, 1/D) cost
  charlm's LSTM 0.67 bits/char, docs/experiments.md); a SequenceLM flax's default; embedding_init
  chooses another, through zoo.build too."""
  vocab, width = 64, 64
  rnn_lm = zoo.build("lstm", width=width, vocab=vocab, context=8, rngs=nnx.Rngs(0))
  drawn_first = nnx.Embed(vocab, width, embedding_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(np.asarray(rnn_lm.embed.embedding[...]), np.asarray(drawn_first.embedding[...]))
  assert abs(float(np.std(rnn_lm.embed.embedding[...])) - 1.0) < 0.05  # 4,096 draws: std's error ~0.011
  sequence_lm = zoo.build("mingru", width=width, vocab=vocab, context=8, rngs=nnx.Rngs(0))
  assert abs(float(np.std(sequence_lm.embed.embedding[...])) * np.sqrt(width) - 1.0) < 0.05
  for spec in ("lstm", "mingru"):
    zeros = zoo.build(spec, width=8, vocab=5, context=4, rngs=nnx.Rngs(0), embedding_init=nnx.initializers.zeros)
    np.testing.assert_array_equal(np.asarray(zeros.embed.embedding[...]), 0.0)


LANGUAGE_MODELS = {  # a SequenceLM stepping its mixer, one rerunning it, an RNNLanguageModel of one's own cell
  "stepped": lambda: zoo.build("tests.test_zoo:build_indrnn", width=8, vocab=6, context=12, rngs=nnx.Rngs(3)),
  "rerun": lambda: zoo.build("mingru", width=8, vocab=6, context=12, rngs=nnx.Rngs(3)),
  "rnn_lm": lambda: RNNLanguageModel(6, 4, 8, kind=IndRNNCell, num_layers=2, rngs=nnx.Rngs(3)),
}


@pytest.mark.parametrize("name", sorted(LANGUAGE_MODELS))
def test_a_sequence_lm_decodes_as_its_forward_pass_reads(name):
  """Greedy decoding (by the mixer's own steps, or by reruns) equals the argmax of the full forward
  pass over the generated tokens, prompt rows of different lengths included."""
  lm = LANGUAGE_MODELS[name]()
  prompt = jnp.asarray([[1, 2, 3], [0, 4, 5]], jnp.int32)
  mask = jnp.asarray([[True, True, True], [False, True, True]])
  tokens, _ = decoding.greedy(lm, prompt, prompt_mask=mask, max_new_tokens=4)
  seen = [jnp.concatenate([prompt[row, start:], tokens[row]])[None] for row, start in ((0, 0), (1, 1))]  # [1, P + 4]
  logits = nnx.jit(lambda lm, seen: [lm(row) for row in seen])(lm, seen)  # one compile, not one per eager op
  for row in (0, 1):
    want = logits[row][0, -5:-1].argmax(-1)  # each new token: the argmax after what precedes it
    np.testing.assert_array_equal(tokens[row], want)


def test_sequence_predictor_pools_as_written_by_hand():
  x = jnp.asarray(normal(2, B, T, 3))
  mask = jnp.arange(T)[None] < jnp.array([[T], [4]])
  last = SequencePredictor(2, D, zoo.lstm, causal=True, in_features=3, rngs=nnx.Rngs(0))
  assert last.embed is None and last.stack.in_features == 3  # the RNN reads the inputs itself
  ends = SequencePredictor(1, D, zoo.bilstm, causal=False, in_features=3, pool="ends", rngs=nnx.Rngs(0))
  mean = SequencePredictor(2, D, zoo.transformer, causal=False, vocab_size=5, pool="mean", rngs=nnx.Rngs(0))
  tokens = jnp.asarray([[1, 2, 3, 4, 0, 0, 0]] * B, jnp.int32)

  @nnx.jit  # one compile, not one per eager op
  def by_model_and_by_hand(last, ends, mean):
    h = last.stack(x, mask=mask)
    last_pooled = last(x, mask=mask), last.readout(jnp.stack([h[0, -1], h[1, 3]]))
    h = ends.stack(x, mask=mask)  # [B, T, 2D]: forward | backward
    finals = jnp.stack([jnp.concatenate([h[0, -1, :D], h[0, 0, D:]]), jnp.concatenate([h[1, 3, :D], h[1, 0, D:]])])
    ends_pooled = ends(x, mask=mask), ends.readout(finals)
    h = mean.stack(mean.embed(tokens), mask=mask)
    mean_pooled = mean(tokens, mask=mask), mean.readout(jnp.stack([h[0].mean(0), h[1, :4].mean(0)]))
    return last_pooled, ends_pooled, mean_pooled

  last_pooled, ends_pooled, mean_pooled = by_model_and_by_hand(last, ends, mean)
  np.testing.assert_allclose(*last_pooled, rtol=1e-6)
  np.testing.assert_allclose(*ends_pooled, rtol=1e-6)
  np.testing.assert_allclose(*mean_pooled, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match=r"give exactly one of in_features .* and vocab_size"):
    SequencePredictor(2, D, zoo.lstm, causal=True, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"inputs must have shape \[B, T, F=3\]"):
    last(jnp.zeros((B, T, 4)))


def test_token_tagger_reads_out_every_position():
  tagger = TokenTagger(3, D, zoo.mingru, causal=True, in_features=5, rngs=nnx.Rngs(0))
  x = jnp.asarray(normal(3, B, T, 5))
  by_model_and_by_hand = nnx.jit(lambda tagger: (tagger(x), tagger.readout(tagger.stack(tagger.embed(x)))))
  np.testing.assert_allclose(*by_model_and_by_hand(tagger), rtol=1e-6)


def test_fingerprint_follows_structure_and_init():
  def model(recurrent_init="orthogonal", width=8):
    return zoo.build("lstm", width=width, vocab=5, context=6, rngs=nnx.Rngs(0), recurrent_init=recurrent_init)

  assert zoo.fingerprint(model()) == zoo.fingerprint(model())
  assert zoo.fingerprint(model()) != zoo.fingerprint(model(recurrent_init="xavier_uniform"))  # same shapes
  assert zoo.fingerprint(model()) != zoo.fingerprint(model(width=12))


def test_matched_width_comes_nearest_the_target():
  build = lambda width, rngs: zoo.build("gru", width=width, vocab=11, context=8, rngs=rngs)  # noqa: E731
  width, count = zoo.matched_width(build, 3000)
  assert width % 4 == 0 and count == zoo.count_params(build(width, nnx.Rngs(0)))  # the abstract count is real
  for neighbour in (width - 4, width + 4):  # on abstract shapes: an eager init compiles each op anew
    assert abs(zoo.count_params(nnx.eval_shape(lambda w=neighbour: build(w, nnx.Rngs(0)))) - 3000) >= abs(count - 3000)


RECURRENT_SCALE = 1.0  # IndRNNCell's recurrent weights are drawn in [0, RECURRENT_SCALE)


def journal_lines(folder) -> int:
  return len((folder / "long_range.runs.jsonl").read_text().splitlines())


def test_a_cell_of_ones_own_runs_through_long_range_and_a_changed_init_is_trained_again(tmp_path, monkeypatch):
  from experiments import long_range

  args = ["smoke", "--models", "tests.test_zoo:build_indrnn", "--tasks", "adding", "--out", str(tmp_path)]
  long_range.main(args)
  runs = json.loads((tmp_path / "long_range.json").read_text())["runs"]
  assert [(r["model"], r["distance"]) for r in runs][:1] == [("tests.test_zoo:build_indrnn", 4)]
  trained = journal_lines(tmp_path)
  long_range.main(args)
  assert journal_lines(tmp_path) == trained  # the same model: read back
  monkeypatch.setattr(sys.modules[__name__], "RECURRENT_SCALE", 0.5)  # the user changes the cell's init
  long_range.main(args)
  assert journal_lines(tmp_path) == 2 * trained  # trained again, not read back


def test_a_cell_of_ones_own_trains_in_charlm_and_samples_from_its_workdir(tmp_path):
  from experiments import charlm

  spec = "tests.test_zoo:build_indrnn"
  charlm.main(["smoke", "--models", spec, "--no-anchor", "--out", str(tmp_path)])
  workdir = run_workdir(tmp_path / "charlm-runs", "tests-test-zoo-build-indrnn-seed0")
  run = json.loads((workdir / "config.json").read_text())["config"]
  assert (run["architecture"], run["builder"], run["options"]) == (spec, spec, {})
  text = charlm.main(["sample", "--checkpoint", str(workdir), "--prompt", "In the", "--tokens", "6"])
  assert text.startswith("In the") and len(text) == 12


@pytest.mark.parametrize("position", zoo.POSITIONS)
def test_the_transformer_mixer_keeps_its_promises_with_every_position(position):
  for causal in (True, False):
    mixer = zoo.transformer(D, causal=causal, rngs=nnx.Rngs(0), context=T, position=position)
    x = jnp.asarray(normal(4, B, T, D))
    out = mixer(x)
    mask = jnp.arange(T)[None] < jnp.array([[T], [4]])
    np.testing.assert_allclose(mixer(x.at[1, 4:].set(9.0), mask=mask)[1, :4], mixer(x[1:, :4])[0], rtol=1e-5, atol=1e-5)
    if causal:
      np.testing.assert_allclose(mixer(x.at[:, 5:].set(-3.0))[:, :5], out[:, :5], rtol=1e-5, atol=1e-6)


def test_stack_level_positions_add_what_they_say():
  from seqjax.attention.positional import sinusoidal_encoding
  from seqjax.transformer import TransformerStack

  options = {"dim": D, "num_heads": 2, "ff_dim": 16, "norm": "pre", "causal": True}
  x = jnp.asarray(normal(5, B, T, D))
  plain = TransformerStack(2, rngs=nnx.Rngs(0), **options)
  sinusoidal = TransformerStack(2, position="sinusoidal", rngs=nnx.Rngs(0), **options)  # draws nothing more
  want = plain(x + sinusoidal_encoding(jnp.arange(T), D)[None])
  np.testing.assert_allclose(sinusoidal(x), want, rtol=1e-5, atol=1e-6)
  relative = TransformerStack(2, position="relative", rngs=nnx.Rngs(0), **options)
  bias = relative.relative(jnp.arange(T), jnp.arange(T))  # [1, N, T, T]
  h = x
  for block in relative.blocks:
    h = block(h, is_causal=True, bias=bias)[0]
  np.testing.assert_allclose(relative(x), relative.final_norm(h), rtol=1e-5, atol=1e-6)
  learned = TransformerStack(2, position="learned", max_length=T - 1, rngs=nnx.Rngs(0), **options)
  with pytest.raises(ValueError, match=f"x has {T} positions, more than max_length {T - 1}"):
    learned(x)
  with pytest.raises(ValueError, match="position='relative' makes the attention bias itself"):
    relative(x, bias=bias)
  with pytest.raises(ValueError, match="serves full sequences, not caches"):
    relative.run(x, caches=relative.init_caches(B, T))
  with pytest.raises(ValueError, match="max_length must be a positive integer"):
    TransformerStack(2, position="learned", rngs=nnx.Rngs(0), **options)
