"""The synthetic translation task shared by experiments.bottleneck and experiments.attention_scores:
its config, its train/test partition, training one `Seq2Seq` on it, evaluating it by source length,
and the figure panels of that evaluation.

Data: `seqjax.data.synthetic`'s "translate" task (SVO -> SOV reordering, relative clauses moved
before their verb, the final verb agreeing with the subject across every clause); a sentence with
k relative clauses has 5 + 4k source words. Trained on k = 0..max_clauses, tested on
k = 0..test_clauses. The test set is disjoint from training by construction: a hash of the source
sentence puts `held_out_percent` of all possible sentences in the test partition, and training
draws only from the rest (the overlap is counted and recorded, 0).
"""

import dataclasses
import itertools
import zlib

import numpy as np
from flax import nnx

from harness import cli, report
from seqjax import decoding
from seqjax.data.batching import seq2seq_batch, step_indices
from seqjax.data.synthetic import generate
from seqjax.data.vocab import BOS, EOS, PAD, Vocab
from seqjax.seq2seq.metrics import bleu_by_length, corpus_bleu, exact_match
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss
from seqjax.train import TrainConfig, fit
from seqjax.zoo import count_params

# Config fields renamed since a committed results file was written (issue #29: the library's names),
# old -> today's; the experiments' RENAMED (harness.renames) are these
RENAMED = {
  "fixed_hiddens": "fixed_hidden_features",
  "attention_hidden": "attention_hidden_features",
  "control_hidden": "control_hidden_features",
  "embed": "embed_dim",
}


@dataclasses.dataclass(frozen=True)
class Config:
  """The task and the models experiments.bottleneck trains on it (attention_scores reads the task, seeds,
  train, attention_hidden_features and embed_dim)."""

  max_clauses: int = 6  # training sentences: 5..5 + 4 * max_clauses words
  test_clauses: int = 9  # test sentences up to 5 + 4 * test_clauses words
  train_sentences: int = 50000
  test_sentences: int = 140  # per clause count, at most (distinct sentences, none trained on)
  held_out_percent: int = 10  # of all possible source sentences, kept for testing only
  fixed_hidden_features: tuple[int, ...] = (64, 128, 256)  # the fixed-context model's widths
  attention_hidden_features: int = 64  # Bahdanau's and Luong's width
  control_hidden_features: int = 128  # the fixed-context width also trained for control_steps
  control_steps: int = 4000
  embed_dim: int = 64
  seeds: tuple[int, ...] = (0, 1, 2)  # each run's train.seed
  train: TrainConfig = TrainConfig(steps=2000, batch_size=64, learning_rate=3e-3, clip_norm=1.0)
  out: str = report.default_out("bottleneck")

  def check(self) -> "Config":
    self.train.check()
    cli.at_least("max_clauses", self.max_clauses, 0)
    for name in (
      "train_sentences",
      "test_sentences",
      "attention_hidden_features",
      "control_hidden_features",
      "control_steps",
      "embed_dim",
    ):
      cli.at_least(name, getattr(self, name), 1)
    if not isinstance(self.test_clauses, int) or self.test_clauses < self.max_clauses:
      raise ValueError(f"test_clauses must be an integer >= max_clauses = {self.max_clauses}, got {self.test_clauses}")
    if not isinstance(self.held_out_percent, int) or not 1 <= self.held_out_percent <= 50:
      raise ValueError(f"held_out_percent must be an integer in [1, 50], got {self.held_out_percent!r}")
    if not self.fixed_hidden_features:
      raise ValueError("fixed_hidden_features must name at least one width")
    for hidden in self.fixed_hidden_features:
      cli.at_least("fixed_hidden_features", hidden, 1)
    cli.check_seeds(self.seeds)
    if self.train_sentences < self.train.batch_size:
      raise ValueError(
        f"train_sentences ({self.train_sentences}) must be >= train.batch_size ({self.train.batch_size})"
      )
    return self


SMOKE = Config(
  max_clauses=1,
  test_clauses=2,
  train_sentences=64,
  test_sentences=4,
  fixed_hidden_features=(8,),
  attention_hidden_features=8,
  control_hidden_features=8,
  control_steps=3,
  embed_dim=8,
  seeds=(0,),
  train=dataclasses.replace(Config().train, steps=2, batch_size=8),
  out="/tmp/seqjax-smoke",
)  # tiny: the smoke configs of both experiments


def held_out(source: list[str], percent: int) -> bool:
  """Whether a source sentence belongs to the test partition (a stable hash, the same on every machine)."""
  return zlib.crc32(" ".join(source).encode()) % 100 < percent


def draw(count: int, clauses: tuple[int, int], seed: int, *, test: bool, config: Config) -> list:
  """`count` pairs with clauses[0]..clauses[1] clauses from one partition. Test pairs are distinct and
  may be fewer than `count` when the partition holds fewer sentences of those lengths."""
  pairs, seen = [], set()
  for attempt in range(20):  # each attempt draws as many candidates again
    for source, target in generate("translate", count, min_length=clauses[0], max_length=clauses[1], seed=seed):
      if held_out(source, config.held_out_percent) != test or (test and tuple(source) in seen):
        continue
      seen.add(tuple(source))
      pairs.append((source, target))
      if len(pairs) == count:
        return pairs
    seed += 7919 * (attempt + 1)
  if not test:
    raise RuntimeError(f"could not draw {count} training sentences outside the test partition")
  return pairs


@dataclasses.dataclass(frozen=True)
class TestSet:
  pairs: list  # encoded (source, target) pairs
  references: list[str]
  source_lengths: list[int]


def datasets(config: Config) -> tuple[Vocab, list, TestSet, int]:
  """The vocabulary, the encoded training pairs, the test set (k = 0..test_clauses clauses, from the
  held-out partition) and how many test sources also appear in training (0 by construction)."""
  raw_train = draw(config.train_sentences, (0, config.max_clauses), 0, test=False, config=config)
  raw_test = [
    p for k in range(config.test_clauses + 1) for p in draw(config.test_sentences, (k, k), 1000 + k, test=True,
                                                           config=config)
  ]  # fmt: skip
  overlap = len({tuple(s) for s, _ in raw_test} & {tuple(s) for s, _ in raw_train})
  vocab = Vocab.words(" ".join(s + t) for s, t in raw_train + raw_test)
  encode = lambda pairs: [(vocab.encode(s), vocab.encode(t)) for s, t in pairs]  # noqa: E731
  test = TestSet(encode(raw_test), [" ".join(t) for _, t in raw_test], [len(s) for s, _ in raw_test])
  return vocab, encode(raw_train), test, overlap


def model_config(options: dict, hidden: int, vocab: Vocab, config: Config) -> Seq2SeqConfig:
  return Seq2SeqConfig(len(vocab), len(vocab), embed_dim=config.embed_dim, hidden_features=hidden, **options)


def abstract_model(options: dict, hidden: int, vocab: Vocab, config: Config) -> Seq2Seq:
  """The model's shapes (nothing is initialized): what parameter and FLOP counts read."""
  return nnx.eval_shape(lambda: Seq2Seq(model_config(options, hidden, vocab, config), rngs=nnx.Rngs(0)))


def parameters(options: dict, hidden: int, vocab: Vocab, config: Config) -> int:
  """The model's parameter count, from its shapes (nothing is initialized)."""
  return count_params(abstract_model(options, hidden, vocab, config))


def padded_lengths(train_pairs) -> tuple[int, int]:
  """(source, target) positions of every training batch: the longest source, the longest target
  + 1 (BOS or EOS); one compiled shape, padding included."""
  return max(len(s) for s, _ in train_pairs), max(len(t) for _, t in train_pairs) + 1


def flops_per_target_token(model: Seq2Seq, source_length: int, target_length: int) -> float:
  """Nominal training FLOPs per target position of a batch padded to (source_length,
  target_length), harness.budget's count: 6 per encoder parameter per source position, 6 per
  parameter of the rest (decoder cell, attention's projections, combine, output layer) per target
  position, plus attention's scores and weighted sum, 12 x source_length x the memory width per
  target position (a dot product's count for every score; additive and concat scores do a little
  more per pair, local windows weigh fewer positions: not told apart). Not counted: embedding
  lookups, gates and other elementwise work; padded positions are counted (the model computes them)."""
  lookups = count_params(model.source_embed) + count_params(model.target_embed)
  encoder = count_params(model.encoder) + (count_params(model.bridge) if model.bridge is not None else 0)
  rest = count_params(model) - lookups - encoder
  width = model.config.hidden_features * (2 if model.config.bidirectional_encoder else 1)
  attention = 12.0 * source_length * width if model.score is not None else 0.0
  return 6.0 * encoder * source_length / target_length + 6.0 * rest + attention


def train(options: dict, hidden: int, steps: int, vocab: Vocab, train_pairs, config: Config, seed: int):
  """fit's result: `seed`'s model trained `steps` steps on batches drawn from train_pairs."""
  train_config = dataclasses.replace(config.train, seed=seed, steps=steps)
  longest = padded_lengths(train_pairs)

  def batch_fn(step: int, rows: slice) -> dict:
    index = step_indices(seed, step, len(train_pairs), train_config.batch_size)
    return seq2seq_batch([train_pairs[i] for i in index[rows]], source_length=longest[0], target_length=longest[1])

  model = Seq2Seq(model_config(options, hidden, vocab, config), rngs=nnx.Rngs(seed))
  return fit(model, teacher_forced_loss, batch_fn, train_config)


def translate(model, vocab: Vocab, pairs, max_length: int) -> list[str]:
  batch = seq2seq_batch(pairs)
  start = np.full((len(pairs), 1), BOS, np.int32)  # the decoder's prompt: BOS alone
  tokens, _ = decoding.greedy(
    model,
    start,
    src=batch["src"],
    src_mask=batch["src_mask"],
    max_new_tokens=max_length,
    eos_id=EOS,
    pad_id=PAD,
    suppress=(BOS,),
  )
  return [" ".join(vocab.decode(row)) for row in np.asarray(tokens)]


def evaluate(variant, vocab: Vocab, train_pairs, test: TestSet, config: Config, seed: int) -> dict:
  """Train one model from `seed`; BLEU and exact match over the test set and per clause count."""
  _, options, hidden, steps = variant
  result = train(options, hidden, steps, vocab, train_pairs, config, seed)
  model = result.model
  hypotheses = translate(model, vocab, test.pairs, max_length=3 + 2 * config.test_clauses + 2)
  edges = [5 + 4 * k for k in range(config.test_clauses + 2)]  # one bucket per clause count
  buckets = bleu_by_length(hypotheses, test.references, test.source_lengths, edges)
  for bucket, (low, high) in zip(buckets, itertools.pairwise(edges), strict=True):  # every bucket has sentences
    picked = [i for i, n in enumerate(test.source_lengths) if low <= n < high]
    bucket["exact_match"] = exact_match([hypotheses[i] for i in picked], [test.references[i] for i in picked])
  return {
    "seed": seed,
    "final_train_loss": result.history[-1]["loss"],
    "train_loss": [(h["step"], h["loss"]) for h in result.history],  # every log_every steps
    "train_seconds": result.history[-1]["train_s"],  # fit's, the compiling step excluded
    "bleu": corpus_bleu(hypotheses, test.references),
    "buckets": buckets,
    "examples": list(zip(test.references[-3:], hypotheses[-3:], strict=True)),
  }


def summary_cells(runs: list[dict], config: Config) -> dict[str, str]:
  """Per bucket "mean BLEU / mean exact match [lowest-highest]" over the seeds' runs, and overall BLEU."""
  cells = {}
  for index, bucket in enumerate(runs[0]["buckets"]):
    bleus = [run["buckets"][index]["bleu"] for run in runs]
    exact = [100 * run["buckets"][index]["exact_match"] for run in runs]
    bleu = "n/a" if None in bleus else f"{np.mean(bleus):.1f}"
    beyond = "†" if index > config.max_clauses else ""
    cells[f"{bucket['lengths']} words{beyond}"] = f"{bleu} / {report.spread(exact, '.0f')}%"
  cells["all (BLEU)"] = report.spread([run["bleu"] for run in runs], ".1f")
  cells["final train loss"] = report.spread([run["final_train_loss"] for run in runs], ".4f")
  return cells


def draw_quality(exact_ax, bleu_ax, data: dict, config: Config) -> None:
  """Exact match and BLEU against source length per model: seed mean with the min-max band."""
  lengths = [5 + 4 * k for k in range(config.test_clauses + 1)]
  for name, runs in data.items():
    exact = 100 * np.array([[b["exact_match"] for b in run["buckets"]] for run in runs])  # [seeds, buckets]
    (line,) = exact_ax.plot(lengths, exact.mean(0), marker="o", markersize=3, label=name)
    exact_ax.fill_between(lengths, exact.min(0), exact.max(0), color=line.get_color(), alpha=0.2)
    scored = [i for i, b in enumerate(runs[0]["buckets"]) if b["bleu"] is not None]
    bleu = np.array([[run["buckets"][i]["bleu"] for i in scored] for run in runs])
    bleu_ax.plot([lengths[i] for i in scored], bleu.mean(0), marker="o", markersize=3, color=line.get_color())
    bleu_ax.fill_between([lengths[i] for i in scored], bleu.min(0), bleu.max(0), color=line.get_color(), alpha=0.2)
  for ax, label in ((exact_ax, "exact match (% of test sentences)"), (bleu_ax, "BLEU (sacrebleu)")):
    ax.axvline(5 + 4 * config.max_clauses, color="gray", linestyle="--", linewidth=1)
    ax.text(5 + 4 * config.max_clauses + 0.5, 0.03, "longest\ntrained", color="gray", fontsize=8,
            transform=ax.get_xaxis_transform())  # fmt: skip
    ax.set_xlabel("source sentence length (words)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
  exact_ax.set_ylim(-2, 102)
  exact_ax.legend(fontsize=8, loc="lower left")
