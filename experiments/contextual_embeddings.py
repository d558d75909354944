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

Accuracy is reported overall, split by whether a cue comes before the word, and by the distance
from the word to its nearest cue (what separates the recurrent models, which must carry the
sense across every word between, from attention, which reads it in one step), with the cosine
similarity of the word's vectors between sentences of the same and of different senses. A second
BERT trained with `collapse_learning_rate` (no warmup) checks, over the seeds, whether the post-LN
BERT collapses to one vector for every sentence at that rate. Each seed draws its own training
data, probe sentences and initialization; the probe sentences found in training are counted.

The ELMo-style model's two directions are the LSTM of `seqjax.zoo`; `--models` also takes any
causal architecture of the zoo by its name or as "package.module:builder" (your own: README,
"Your own model"), trained the same way (a forward and a backward language model of width `dim`
sharing the embedding and softmax) and probed beside the LSTM's, per direction and both together.

Commands:
    python -m experiments.contextual_embeddings default   # T=48, 3 models x 3 seeds: well under an hour on 2 CPU cores
    python -m experiments.contextual_embeddings smoke
    python -m experiments.contextual_embeddings smoke --models LSTM gru mypkg.cells:build_indrnn
    python -m experiments.contextual_embeddings large     # T=128, D=256, 10000 steps: for an accelerator
    python -m experiments.contextual_embeddings default --pretrained bert-base-uncased   # a real BERT, see below

With `--pretrained FOLDER` (a Hugging Face BERT folder: config.json, model.safetensors, vocab.txt;
on a connected machine `hf download google-bert/bert-base-uncased config.json model.safetensors
vocab.txt --local-dir bert-base-uncased`) nothing is trained: the same sentence layouts are
written in English words ("bank"; money, loan, ... against river, water, ...; neutral fillers),
split by the folder's WordPiece vocabulary, and the pretrained BERT's last layer at "bank" is
probed beside its input embedding; <out>/contextual_embeddings_pretrained.*.
"""

import dataclasses
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report
from harness.runs import Runs
from seqjax import zoo
from seqjax.data.batching import step_indices
from seqjax.data.wordpiece import WordPiece
from seqjax.interop import from_pretrained
from seqjax.mixer import Builder, build_mixer
from seqjax.train import TrainConfig, fit, token_cross_entropy
from seqjax.transformer import BertConfig, BertForPreTraining, mask_tokens
from seqjax.zoo import count_params

MASK, WORD = 0, 1  # token ids: [MASK], the ambiguous word; then the cue words, then the fillers
SENSES = ("finance", "river")
# The English words of the pretrained mode, in the order of the synthetic ids they replace
FINANCE = ("money", "loan", "deposit", "account", "cash", "credit", "interest", "savings", "mortgage", "teller")
RIVER = ("river", "water", "fish", "shore", "mud", "stream", "boat", "grass", "flood", "fishing")
FILLERS = (
  "the", "a", "we", "they", "walked", "saw", "went", "near", "by", "old", "new", "big", "small", "early", "late",
  "morning", "evening", "yesterday", "today", "friend", "family", "people", "city", "town", "road", "car", "house",
  "day", "week", "time", "good", "long", "first", "last", "again", "there", "then", "also", "very", "quite",
)  # fmt: skip


class Recurrent(NamedTuple):
  """An architecture of the ELMo-style model (`BiLM`): its seqjax.zoo spec and the names of its
  results: the key of its parameters and loss, its forward and its two-direction representation."""

  spec: str
  key: str
  forward: str
  both: str


# name -> the ELMo-style model's architecture (its names are the committed results')
ARCHITECTURES = {
  "LSTM": Recurrent("lstm", "BiLM", "forward LSTM (left context)", "BiLSTM, ELMo-style (both sides)"),
}


def recurrent(name: str) -> Recurrent:
  """ARCHITECTURES[name], else the zoo architecture `name` (a name or "package.module:builder")."""
  return cli.model_choice(
    name,
    ARCHITECTURES,
    lambda spec: Recurrent(
      spec, f"BiLM {spec}", f"forward {spec} (left context)", f"{spec} both ways, ELMo-style (both sides)"
    ),
  )


@dataclasses.dataclass(frozen=True)
class Config:
  models: tuple[str, ...] = ()  # ELMo-style: of ARCHITECTURES, or seqjax.zoo's: a name or "module:builder"; () = all
  length: int = 48
  cues_per_sense: int = 8
  fillers: int = 40
  train_sentences: int = 20000
  probe_sentences: int = 4000
  dim: int = 64
  ridge: float = 1.0
  distance_edges: tuple[int, ...] = (1, 3, 6, 12, 24)  # nearest-cue distance buckets [e_i, e_i+1), the last open
  collapse_learning_rate: float = 3e-3  # a second BERT, trained at this rate
  pretrained: str = ""  # a Hugging Face BERT folder (with vocab.txt): probe it on English words instead of training
  seeds: tuple[int, ...] = (0, 1, 2)  # each draws the data and initializes the models
  train: TrainConfig = TrainConfig(steps=1500, batch_size=64, learning_rate=1e-3, clip_norm=1.0)
  out: str = report.default_out("contextual_embeddings")

  def check(self) -> "Config":
    self.train.check()
    cli.at_least("length", self.length, 3)
    cli.at_least("probe_sentences", self.probe_sentences, 4)
    cli.check_seeds(self.seeds)
    for name in ("cues_per_sense", "fillers", "dim", "train_sentences"):
      cli.at_least(name, getattr(self, name), 1)
    cli.positive_number("ridge", self.ridge)
    cli.positive_number("collapse_learning_rate", self.collapse_learning_rate)
    edges = self.distance_edges
    if not edges or edges[0] != 1 or any(b <= a for a, b in itertools.pairwise(edges)):
      raise ValueError(f"distance_edges must rise strictly from 1, got {edges}")
    if self.train_sentences < self.train.batch_size:
      raise ValueError(
        f"train_sentences ({self.train_sentences}) must be >= train.batch_size ({self.train.batch_size})"
      )
    for name in self.models:
      recurrent(name)  # a ValueError naming it unless it is known
      try:  # and it must build as two causal language models (on shapes alone)
        nnx.eval_shape(lambda name=name: bilm(name, self, nnx.Rngs(0)))
      except (TypeError, ValueError) as error:
        raise ValueError(f"models: {name!r} does not build causal at width dim={self.dim}: {error}") from None
    if self.pretrained and (self.cues_per_sense > len(FINANCE) or self.fillers > len(FILLERS)):
      raise ValueError(
        f"with pretrained, cues_per_sense must be <= {len(FINANCE)} and fillers <= {len(FILLERS)} (the English "
        f"word lists), got {self.cues_per_sense} and {self.fillers}"
      )
    return self


CONFIGS = {
  "default": ("T=48, D=64, 1500 steps per model, 3 seeds (the README's numbers)", Config()),
  "smoke": (
    "tiny",
    Config(
      length=6,
      fillers=6,
      train_sentences=64,
      probe_sentences=40,
      dim=8,
      distance_edges=(1, 3),
      collapse_learning_rate=1e-3,  # train's: the second BERT compiles the first one's program (tests cache it)
      seeds=(0,),
      train=dataclasses.replace(Config().train, steps=2, batch_size=8),
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: T=128, D=256, 10000 steps",
    Config(
      length=128,
      dim=256,
      train_sentences=200000,
      distance_edges=(1, 3, 6, 12, 24, 48, 96),
      train=dataclasses.replace(Config().train, steps=10000),
      out=report.default_out("contextual_embeddings", "large"),
    ),
  ),
}


def vocab_size(config: Config) -> int:
  return 2 + 2 * config.cues_per_sense + config.fillers


def sentences(config: Config, count: int, seed: int) -> dict[str, np.ndarray]:
  """tokens [N, T], the word's position [N], its sense [N] (0 finance, 1 river), cue before it [N],
  distance from the word to its nearest cue [N]."""
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
  distance = np.abs(cues - position[:, None]).min(axis=1)
  return {
    "tokens": tokens.astype(np.int32),
    "position": position,
    "sense": sense,
    "cue_before": cue_before,
    "distance": distance,
  }


class BiLM(nnx.Module):
  """ELMo's bidirectional LM (Peters et al. 2018): one embedding, a forward and a backward language
  model each of a causal mixer `builder` makes (`seqjax.mixer`; the backward one reads each
  sentence right to left), one shared softmax: the forward mixer's state at t predicts token t+1,
  the backward one's token t-1. states(tokens [B, T]) -> (forward [B, T, D], backward [B, T, D]).

  This experiment's own, not a `seqjax.heads` model: ELMo's two one-way language models share
  their input embedding and softmax, and the probe reads each direction's state at the word.
  Made in the order embedding, forward, backward, softmax (the committed numbers depend on it)."""

  def __init__(self, vocab: int, dim: int, builder: Builder, *, context: int, rngs: nnx.Rngs):
    self.embed = nnx.Embed(vocab, dim, rngs=rngs)
    self.forward_rnn, self.backward_rnn = (
      build_mixer(builder, dim, causal=True, rngs=rngs, in_features=dim, context=context) for _ in range(2)
    )
    self.out = nnx.Linear(self.forward_rnn.out_features, vocab, rngs=rngs)

  def states(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = self.embed(tokens)  # [B, T, D]
    backward = jnp.flip(self.backward_rnn(jnp.flip(x, axis=1)), axis=1)  # read right to left, put back in place
    return self.forward_rnn(x), backward

  def __call__(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    forward, backward = self.states(tokens)
    return self.out(forward[:, :-1]), self.out(backward[:, 1:])  # next-token and previous-token logits


def bilm(name: str, config: Config, rngs: nnx.Rngs) -> BiLM:
  """The ELMo-style model of `name` (ARCHITECTURES' or the zoo's) at the config's sizes."""
  builder = zoo.resolve(recurrent(name).spec).builder
  return BiLM(vocab_size(config), config.dim, builder, context=config.length, rngs=rngs)


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


def train(model: nnx.Module, loss_fn, data: np.ndarray, train_config: TrainConfig) -> tuple[nnx.Module, float]:
  def batch_fn(step: int, rows: slice) -> dict:
    index = step_indices(train_config.seed, step, len(data), train_config.batch_size)
    return {"tokens": data[index[rows]]}

  result = fit(model, loss_fn, batch_fn, train_config)
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


def bert_config(config: Config) -> BertConfig:
  """The 2-layer post-LN BERT's shape."""
  return BertConfig(
    vocab_size=vocab_size(config),
    max_length=config.length,
    type_vocab_size=1,
    dim=config.dim,
    num_heads=4 if config.dim % 4 == 0 else 1,
    num_layers=2,
    ff_dim=4 * config.dim,
    dropout_rate=0.0,
  )


def bert(config: Config, seed: int, learning_rate: float, train_tokens: np.ndarray):
  """A 2-layer post-LN BERT trained by masked LM from `seed` at `learning_rate` -> (model, final loss)."""
  model = BertForPreTraining(bert_config(config), next_sentence=False, rngs=nnx.Rngs(seed))
  train_config = dataclasses.replace(config.train, seed=seed, learning_rate=learning_rate)
  return train(model, make_mlm_loss(vocab_size(config)), train_tokens, train_config)


def scores(vectors: np.ndarray, probe: dict, config: Config) -> dict:
  """The probe's accuracy on the second half (overall, by cue side, by nearest-cue distance) and cosines."""
  half = config.probe_sentences // 2
  correct = ridge_probe(vectors, probe["sense"], config.ridge) == probe["sense"][half:]
  before, distance = probe["cue_before"][half:], probe["distance"][half:]
  edges = itertools.pairwise([*config.distance_edges, config.length])
  in_bucket = [(distance >= a) & (distance < b) for a, b in edges]  # one mask [N/2] per bucket
  if not all(mask.any() for mask in in_bucket):
    raise ValueError(
      f"a distance_edges bucket holds no probe sentence; raise probe_sentences ({config.probe_sentences})"
    )
  same, other = mean_cosine(vectors, probe["sense"])
  return {
    "accuracy": float(correct.mean()),
    "accuracy_cue_before": float(correct[before].mean()),
    "accuracy_cues_only_after": float(correct[~before].mean()),
    "accuracy_by_distance": [float(correct[mask].mean()) for mask in in_bucket],
    "sentences_by_distance": [int(mask.sum()) for mask in in_bucket],
    "cosine_same_sense": same,
    "cosine_other_sense": other,
  }


def run(config: Config, seed: int) -> dict:
  """Train the BiLM of each model, the BERT and the BERT at the collapse rate from `seed`; probe each
  representation."""
  train_tokens = sentences(config, config.train_sentences, seed)["tokens"]
  probe = sentences(config, config.probe_sentences, 10_000 + seed)
  overlap = len(set(map(bytes, probe["tokens"])) & set(map(bytes, train_tokens)))
  rows_index = np.arange(config.probe_sentences)
  at_word = lambda states: np.asarray(states)[rows_index, probe["position"]]  # noqa: E731  [N, D]

  train_config = dataclasses.replace(config.train, seed=seed)
  tokens = jnp.asarray(probe["tokens"])
  representations, parameters, losses = {}, {}, {}
  for name in config.models or ARCHITECTURES:
    model = recurrent(name)
    trained, losses[model.key] = train(bilm(name, config, nnx.Rngs(seed)), bilm_loss, train_tokens, train_config)
    parameters[model.key] = count_params(trained)
    forward, backward = (at_word(s) for s in trained.states(tokens))
    representations[model.forward] = forward
    representations[model.both] = np.concatenate([forward, backward], axis=1)
  bert_model, losses["BERT"] = bert(config, seed, config.train.learning_rate, train_tokens)
  collapsed, losses[f"BERT at lr {config.collapse_learning_rate:g}"] = bert(
    config, seed, config.collapse_learning_rate, train_tokens
  )
  parameters["BERT"] = count_params(bert_model)  # the collapse BERT: as BERT

  table = np.asarray(bert_model.bert.embed.tokens.embedding[...])  # [V, D]
  representations = {
    "static (input embedding table)": np.tile(table[WORD], (config.probe_sentences, 1)),  # one vector, always
    **representations,
    "BERT, last layer (both sides, attention)": at_word(bert_model.bert(tokens)[0]),
    f"BERT trained at lr {config.collapse_learning_rate:g}": at_word(collapsed.bert(tokens)[0]),
  }
  return {
    "seed": seed,
    "train_test_overlap": overlap,
    "cue_before_share": float(probe["cue_before"][config.probe_sentences // 2 :].mean()),
    "parameters": parameters,
    "losses": losses,
    "representations": {name: scores(vectors, probe, config) for name, vectors in representations.items()},
  }


def english(tokens: np.ndarray, config: Config) -> list[list[str]]:
  """Synthetic ids [N, T] -> the same sentences in English words: "bank", the cues, the fillers."""
  C = config.cues_per_sense
  words = ["[MASK]", "bank", *FINANCE[:C], *RIVER[:C], *FILLERS[: config.fillers]]
  return [[words[t] for t in row] for row in tokens]


def run_pretrained(config: Config, seed: int, batch: int = 64) -> dict:
  """Probe a pretrained BERT (no training) on sentences of `seed`'s layout written in English."""
  model = from_pretrained(config.pretrained)
  if not isinstance(model, BertForPreTraining):
    raise ValueError(f"pretrained must be a BERT folder (model_type 'bert'), got a {type(model).__name__}")
  wordpiece = WordPiece.from_folder(config.pretrained)
  probe = sentences(config, config.probe_sentences, 10_000 + seed)
  encoded = [wordpiece.sentence(words) for words in english(probe["tokens"], config)]
  T = max(len(ids) for ids, _ in encoded)
  if T > model.bert.config.max_length:
    raise ValueError(f"length: {T} word pieces exceed the model's max_length {model.bert.config.max_length}")
  ids = np.full((len(encoded), T), wordpiece.ids["[PAD]"], np.int32)  # [N, T] word pieces
  for row, (pieces, _) in enumerate(encoded):
    ids[row, : len(pieces)] = pieces
  mask = ids != wordpiece.ids["[PAD]"]  # [N, T]
  at = np.array([firsts[p] for (_, firsts), p in zip(encoded, probe["position"], strict=True)])  # "bank"'s piece
  encode = nnx.jit(lambda model, ids, mask: model.bert(ids, attention_mask=mask)[0])
  states = np.concatenate(
    [np.asarray(encode(model, ids[i : i + batch], mask[i : i + batch])) for i in range(0, len(ids), batch)]
  )  # [N, T, D]
  table = np.asarray(model.bert.embed.tokens.embedding[...])  # [V, D]
  bank = wordpiece.word("bank")[0]
  representations = {
    "static (input embedding table)": np.tile(table[bank], (config.probe_sentences, 1)),
    "pretrained BERT, last layer": states[np.arange(len(ids)), at],
  }
  return {
    "seed": seed,
    "train_test_overlap": 0,  # nothing trained here
    "cue_before_share": float(probe["cue_before"][config.probe_sentences // 2 :].mean()),
    "parameters": {"pretrained BERT": count_params(model)},
    "losses": {},
    "representations": {name: scores(vectors, probe, config) for name, vectors in representations.items()},
  }


def distance_labels(config: Config) -> list[str]:
  edges = [*config.distance_edges, config.length]
  return [f"{a}-{b - 1}" if b - 1 > a else f"{a}" for a, b in itertools.pairwise(edges)]


def draw(runs: list[dict], config: Config, file_name: str = "contextual_embeddings"):
  """Probe accuracy per representation, accuracy against nearest-cue distance, and the cosines:
  written to out/<file_name>.png."""
  names = list(runs[0]["representations"])
  short = [name.split(" (")[0].split(",")[0] for name in names]  # tick labels
  fig, (bars, by_distance, cosines) = figures.figure(16, 4.8, columns=3)
  values = lambda name, key: np.array([r["representations"][name][key] for r in runs])  # noqa: E731  [seeds, ...]
  for index, name in enumerate(names):
    accuracy = 100 * values(name, "accuracy")
    bars.bar(index, accuracy.mean(), color=f"C{index}")
    bars.errorbar(index, accuracy.mean(), [[accuracy.mean() - accuracy.min()], [accuracy.max() - accuracy.mean()]],
                  color="black", capsize=3)  # fmt: skip
    by = 100 * values(name, "accuracy_by_distance")  # [seeds, buckets]
    positions = np.arange(by.shape[1])
    by_distance.plot(positions, by.mean(0), "-o", color=f"C{index}", label=name, markersize=3)
    by_distance.fill_between(positions, by.min(0), by.max(0), color=f"C{index}", alpha=0.15)
    for offset, key in ((-0.2, "cosine_same_sense"), (0.2, "cosine_other_sense")):
      cosine = values(name, key)
      cosines.bar(index + offset, cosine.mean(), width=0.4, color=f"C{index}", alpha=1.0 if offset < 0 else 0.45)
  bars.axhline(50, color="0.4", ls="--", lw=1)
  bars.set_xticks(range(len(names)), short, rotation=25, ha="right")
  bars.set_ylabel("sense probe accuracy (% of held-out sentences)")
  bars.set_title("probe accuracy (bar: seed mean; whisker: min-max; dashes: chance)", fontsize=9)
  by_distance.set_xticks(range(len(distance_labels(config))), distance_labels(config))
  by_distance.set_xlabel("distance from the word to its nearest cue (words)")
  by_distance.set_ylabel("probe accuracy (%)")
  by_distance.set_title("accuracy against cue distance (band: min-max over seeds)", fontsize=9)
  by_distance.legend(fontsize=7)
  cosines.set_xticks(range(len(names)), short, rotation=25, ha="right")
  cosines.set_ylabel("mean cosine between the word's vectors")
  cosines.set_title("cosine: same sense (dark) vs other sense (light)", fontsize=9)
  for ax in (bars, by_distance, cosines):
    ax.grid(alpha=0.3, axis="y")
  fig.suptitle(
    f"Reading the sense of 'bank' from its vector: static, recurrent and attention representations "
    f"(T={config.length}, {len(runs)} seeds)",
    fontsize=10,
  )
  return figures.save(fig, config.out, file_name)


def results_name(config: Config) -> str:
  """The results files' and the figure's name."""
  return "contextual_embeddings_pretrained" if config.pretrained else "contextual_embeddings"


def redraw(record: dict, config: Config) -> list:
  """The figure of a results file (harness.redraw)."""
  return [draw(record["runs"], config, results_name(config))]


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  plan = Runs(len(config.seeds))
  label = "pretrained BERT (probed, not trained)" if config.pretrained else "BiLM, BERT and BERT at the collapse rate"
  measure = run_pretrained if config.pretrained else run
  runs = [plan.run(label, s, lambda s=s: measure(config, s)) for s in config.seeds]
  spread = lambda values: report.spread(100 * np.asarray(values), ".1f")  # noqa: E731
  rows, distance_rows, names = [], [], list(runs[0]["representations"])
  for name in names:
    values = lambda key, name=name: [r["representations"][name][key] for r in runs]  # noqa: E731
    rows.append(
      {
        "representation of the ambiguous word": name,
        "probe accuracy %": spread(values("accuracy")),
        "a cue before the word %": spread(values("accuracy_cue_before")),
        "cues only after %": spread(values("accuracy_cues_only_after")),
        "cosine, same sense": report.spread(values("cosine_same_sense")),
        "cosine, other sense": report.spread(values("cosine_other_sense")),
      }
    )
    by = np.array(values("accuracy_by_distance"))  # [seeds, buckets]
    distance_rows.append(
      {
        "representation": name,
        **{f"cue {label} away %": spread(by[:, i]) for i, label in enumerate(distance_labels(config))},
      }
    )
  losses = {name: report.spread([r["losses"][name] for r in runs]) for name in runs[0]["losses"]}
  overlap = sum(r["train_test_overlap"] for r in runs)
  name = results_name(config)
  figure_path = draw(runs, config, name)
  half = config.probe_sentences - config.probe_sentences // 2
  sizes = ", ".join(f"{model} {count:,}" for model, count in runs[0]["parameters"].items())
  models = (
    f"the pretrained BERT of {config.pretrained} (no training; English words: 'bank', {config.cues_per_sense} "
    f"cue words per sense, {config.fillers} fillers, in random order; {sizes} parameters)"
    if config.pretrained
    else f"D={config.dim}, {config.train.steps} Adam steps of {config.train.batch_size} per model on "
    f"{config.train_sentences} sentences, lr {config.train.learning_rate:g}; parameters: {sizes} (each BERT); "
    f"final train loss {losses}; probe "
    f"sentences seen in training: {overlap}"
  )
  report.write(
    name,
    "Static against contextual embeddings: reading a word's sense from its vector",
    [
      (
        f"Linear probe on {half} held-out sentences per seed (chance 50%; "
        f"{100 * np.mean([r['cue_before_share'] for r in runs]):.0f}% with a sense cue before the word); "
        f"mean [lowest-highest] over seeds {list(config.seeds)}; T={config.length}; {models}",
        report.markdown_table(rows),
      ),
      (
        "Probe accuracy by the distance from the word to its nearest cue; held-out sentences per bucket "
        f"(seed {runs[0]['seed']}): {runs[0]['representations'][names[0]]['sentences_by_distance']}",
        report.markdown_table(distance_rows) + f"\n\n![probe accuracy and cosines]({figure_path.name})",
      ),
    ],
    {"seeds": len(config.seeds), "train_test_overlap": overlap, "runs": runs},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
