"""Static against contextual embeddings (seed 000, "Word Representations Before Transformers"):
"the word 'bank' has exactly ONE vector, whether it means a financial institution or a river bank",
while an ELMo-style BiLSTM or a BERT gives the same word different vectors in different sentences.

Data: sentences of T random filler words holding one ambiguous word ("bank") and two cue words of
its sense (finance or river), at random positions, so a sense cue may come before the word, after
it, or both. Three models learn the language without ever seeing a sense label: an ELMo-style
bidirectional LSTM language model (a forward LM predicting the next word and a backward LM the
previous one) and a BERT trained by masked-LM. Then a linear probe (ridge regression on +-1 sense
labels, fit on half of a fresh set of sentences, scored on the other half) reads the sense from
the vector each representation gives the ambiguous word:

    static         the input embedding table's row for the word (BERT's; the same in every sentence)
    forward LSTM   the forward LM's hidden state at the word (left context only)
    BiLSTM (ELMo)  forward and backward states at the word
    BERT           the encoder's last layer at the word

Accuracy is reported overall and split by whether a cue comes before the word, with the cosine
similarity of the word's vectors between sentences of the same and of different senses.

Commands:
    python -m experiments.contextual_embeddings default   # a few minutes on 2 CPU cores
    python -m experiments.contextual_embeddings smoke
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments import cli, report
from seqjax import _validate
from seqjax.data.batching import step_indices
from seqjax.recurrent import RNN, LSTMCell
from seqjax.train import TrainConfig, fit, token_cross_entropy
from seqjax.transformer import BertConfig, BertForPreTraining, mask_tokens

MASK, WORD = 0, 1  # token ids: [MASK], the ambiguous word; then the cue words, then the fillers
SENSES = ("finance", "river")


@dataclasses.dataclass(frozen=True)
class Config:
  length: int = 12
  cues_per_sense: int = 8
  fillers: int = 40
  train_sentences: int = 20000
  probe_sentences: int = 2000
  dim: int = 64
  ridge: float = 1.0
  # train.seed also draws the data and initializes both models
  train: TrainConfig = TrainConfig(steps=1500, batch_size=64, learning_rate=1e-3, clip_norm=1.0, progress=False)
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    self.train.check()
    cli.at_least("length", self.length, 3)
    cli.at_least("probe_sentences", self.probe_sentences, 4)
    for name in ("cues_per_sense", "fillers", "dim", "train_sentences"):
      _validate.positive_int(name, getattr(self, name))
    _validate.finite_number("ridge", self.ridge, low=0.0, inclusive=False)
    if self.train_sentences < self.train.batch_size:
      raise ValueError(
        f"train_sentences ({self.train_sentences}) must be >= train.batch_size ({self.train.batch_size})"
      )
    return self


CONFIGS = {
  "default": ("T=12, D=64, 1500 steps per model (the README's numbers)", Config()),
  "smoke": (
    "tiny",
    Config(
      length=6,
      fillers=6,
      train_sentences=64,
      probe_sentences=40,
      dim=8,
      train=dataclasses.replace(Config().train, steps=2, batch_size=8),
      out="/tmp/seqjax-smoke",
    ),
  ),
}


def vocab_size(config: Config) -> int:
  return 2 + 2 * config.cues_per_sense + config.fillers


def sentences(config: Config, count: int, seed: int) -> dict[str, np.ndarray]:
  """tokens [N, T], the word's position [N], its sense [N] (0 finance, 1 river), cue before it [N]."""
  rng = np.random.default_rng(seed)
  N, T, C = count, config.length, config.cues_per_sense
  tokens = 2 + 2 * C + rng.integers(0, config.fillers, (N, T))  # fillers everywhere first
  sense = rng.integers(0, 2, N)
  order = np.argsort(rng.random((N, T)), axis=1)  # a random permutation of positions per sentence
  position, cues = order[:, 0], order[:, 1:3]  # [N], [N, 2]
  rows = np.arange(N)
  tokens[rows, position] = WORD
  for j in range(2):
    tokens[rows, cues[:, j]] = 2 + sense * C + rng.integers(0, C, N)
  cue_before = (cues < position[:, None]).any(axis=1)
  return {"tokens": tokens.astype(np.int32), "position": position, "sense": sense, "cue_before": cue_before}


class BiLM(nnx.Module):
  """ELMo's bidirectional LM (Peters et al. 2018) with one LSTM layer each way and a shared softmax:
  the forward LSTM's state at t predicts token t+1, the backward LSTM's (read right to left)
  predicts token t-1. states(tokens [B, T]) -> (forward [B, T, D], backward [B, T, D])."""

  def __init__(self, vocab: int, dim: int, *, rngs: nnx.Rngs):
    self.embed = nnx.Embed(vocab, dim, rngs=rngs)
    self.forward_rnn = RNN(LSTMCell(dim, dim, rngs=rngs))
    self.backward_rnn = RNN(LSTMCell(dim, dim, rngs=rngs))
    self.out = nnx.Linear(dim, vocab, rngs=rngs)

  def states(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = self.embed(tokens)  # [B, T, D]
    return self.forward_rnn(x)[0], self.backward_rnn(x, reverse=True)[0]

  def __call__(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    forward, backward = self.states(tokens)
    return self.out(forward[:, :-1]), self.out(backward[:, 1:])  # next-token and previous-token logits


def bilm_loss(model: BiLM, batch, rng):
  tokens = batch["tokens"]
  next_logits, previous_logits = model(tokens)
  next_loss, count = token_cross_entropy(next_logits, tokens[:, 1:])
  previous_loss, _ = token_cross_entropy(previous_logits, tokens[:, :-1])
  return (next_loss + previous_loss) / 2, {"tokens": count}


def make_mlm_loss(vocab: int):
  def mlm_loss(model: BertForPreTraining, batch, rng):
    tokens = batch["tokens"]
    inputs, selected = mask_tokens(rng, tokens, maskable=jnp.ones(tokens.shape, bool), mask_id=MASK, vocab_size=vocab)
    logits, _ = model(inputs)
    return token_cross_entropy(logits, tokens, selected)[0], {"tokens": jnp.sum(selected)}

  return mlm_loss


def train(model: nnx.Module, loss_fn, data: np.ndarray, config: Config) -> tuple[nnx.Module, float]:
  def batch_fn(step: int, rows: slice) -> dict:
    index = step_indices(config.train.seed, step, len(data), config.train.batch_size)
    return {"tokens": data[index[rows]]}

  result = fit(model, loss_fn, batch_fn, config.train)
  return result.model, result.history[-1]["loss"]


def ridge_probe(features: np.ndarray, sense: np.ndarray, ridge: float) -> np.ndarray:
  """Fit w on the first half (standardized features plus a bias, targets +-1) by ridge regression;
  -> predicted senses [N/2] of the second half."""
  half = len(features) // 2
  mean, std = features[:half].mean(0), features[:half].std(0) + 1e-6
  x = np.concatenate([(features - mean) / std, np.ones((len(features), 1))], axis=1)
  a, y = x[:half], 2.0 * sense[:half] - 1.0
  w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ y)
  return (x[half:] @ w > 0).astype(int)


def mean_cosine(vectors: np.ndarray, sense: np.ndarray) -> tuple[float, float]:
  """Mean cosine similarity of pairs of vectors from different sentences: same sense, other sense."""
  unit = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)
  similarity = unit @ unit.T
  same = sense[:, None] == sense[None, :]
  off_diagonal = ~np.eye(len(sense), dtype=bool)
  return float(similarity[same & off_diagonal].mean()), float(similarity[~same].mean())


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  V = vocab_size(config)
  train_tokens = sentences(config, config.train_sentences, config.train.seed)["tokens"]
  probe = sentences(config, config.probe_sentences, config.train.seed + 1)
  rows_index = np.arange(config.probe_sentences)
  at_word = lambda states: np.asarray(states)[rows_index, probe["position"]]  # noqa: E731  [N, D]

  bilm, bilm_final = train(BiLM(V, config.dim, rngs=nnx.Rngs(config.train.seed)), bilm_loss, train_tokens, config)
  bert_config = BertConfig(
    vocab_size=V,
    max_length=config.length,
    type_vocab_size=1,
    dim=config.dim,
    num_heads=4 if config.dim % 4 == 0 else 1,
    num_layers=2,
    ff_dim=4 * config.dim,
    dropout_rate=0.0,
  )
  bert = BertForPreTraining(bert_config, next_sentence=False, rngs=nnx.Rngs(config.train.seed))
  bert, bert_final = train(bert, make_mlm_loss(V), train_tokens, config)

  tokens = jnp.asarray(probe["tokens"])
  forward, backward = (at_word(s) for s in bilm.states(tokens))
  table = np.asarray(bert.bert.embed.tokens.embedding[...])  # [V, D]
  representations = {
    "static (input embedding table)": np.tile(table[WORD], (config.probe_sentences, 1)),  # one vector, always
    "forward LSTM (left context)": forward,
    "BiLSTM, ELMo-style (both sides)": np.concatenate([forward, backward], axis=1),
    "BERT, last layer (both sides, attention)": at_word(bert.bert(tokens)[0]),
  }
  half = config.probe_sentences // 2
  sense, before = probe["sense"][half:], probe["cue_before"][half:]
  rows, data = [], {}
  for name, vectors in representations.items():
    correct = ridge_probe(vectors, probe["sense"], config.ridge) == sense
    same, other = mean_cosine(vectors, probe["sense"])
    data[name] = {
      "accuracy": float(correct.mean()),
      "accuracy_cue_before": float(correct[before].mean()),
      "accuracy_cues_only_after": float(correct[~before].mean()),
      "cosine_same_sense": same,
      "cosine_other_sense": other,
    }
    rows.append(
      {
        "representation of the ambiguous word": name,
        "probe accuracy": f"{100 * correct.mean():.1f}%",
        "a cue before the word": f"{100 * correct[before].mean():.1f}%",
        "cues only after": f"{100 * correct[~before].mean():.1f}%",
        "cosine, same sense": f"{same:.3f}",
        "cosine, other sense": f"{other:.3f}",
      }
    )
  report.write(
    "contextual_embeddings",
    "Static against contextual embeddings: reading a word's sense from its vector",
    [
      (
        f"Linear probe on {config.probe_sentences - half} held-out sentences ({100 * before.mean():.0f}% with a sense "
        f"cue before the word; chance 50%); T={config.length}, D={config.dim}, {config.train.steps} Adam steps of "
        f"{config.train.batch_size} per model on {config.train_sentences} sentences; final train loss "
        f"BiLM {bilm_final:.3f}, BERT masked-LM {bert_final:.3f}",
        report.markdown_table(rows),
      )
    ],
    {"representations": data, "bilm_loss": bilm_final, "bert_loss": bert_final},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
