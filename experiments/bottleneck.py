"""The encoder-decoder bottleneck (seed 000, section 1.6): translation quality against sentence
length for a fixed-context seq2seq model and for attention models, trained the same way, each
from several seeds (the seed sets the initialization and the batch order; the data are fixed).

Data: the synthetic translation task of `seqjax.data.synthetic` (SVO -> SOV reordering, relative
clauses moved before their verb, the final verb agreeing with the subject across every clause);
a sentence with k relative clauses has 5 + 4k source words. Trained on k = 0..max_clauses,
tested on fresh sentences of every k; BLEU (sacrebleu) and exact match by source length, as the
mean over seeds with the range of exact match.

The seed's table (BLEU 35-40 at 5-10 words falling under 15 at 40+) comes from real translation;
this measures the same mechanism on a task where length is the only thing that varies.

Commands:
    python -m experiments.bottleneck default     # 3 models x 3 seeds x 2000 steps, about 18 minutes on 2 CPU cores
    python -m experiments.bottleneck smoke
"""

import dataclasses
import itertools

import numpy as np
from flax import nnx

from experiments import cli, report
from seqjax import _validate
from seqjax.data.batching import seq2seq_batch, step_indices
from seqjax.data.synthetic import generate
from seqjax.data.vocab import BOS, EOS, PAD, Vocab
from seqjax.seq2seq import decoding
from seqjax.seq2seq.metrics import bleu_by_length, corpus_bleu, exact_match
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss
from seqjax.train import TrainConfig, fit

MODELS = {
  "fixed context (no attention)": {"attention": "none"},
  "Bahdanau (additive, bidirectional encoder)": {"attention": "bahdanau", "bidirectional_encoder": True},
  "Luong (general, global)": {"attention": "luong", "score": "general"},
}


@dataclasses.dataclass(frozen=True)
class Config:
  max_clauses: int = 6
  train_sentences: int = 50000
  test_sentences: int = 140  # per clause count
  hidden: int = 128
  embed: int = 64
  seeds: tuple[int, ...] = (0, 1, 2)  # each run's train.seed
  train: TrainConfig = TrainConfig(steps=2000, batch_size=64, learning_rate=3e-3, clip_norm=1.0, progress=False)
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    self.train.check()
    _validate.nonnegative_int("max_clauses", self.max_clauses)
    for name in ("train_sentences", "test_sentences", "hidden", "embed"):
      _validate.positive_int(name, getattr(self, name))
    cli.check_seeds(self.seeds)
    if self.train_sentences < self.train.batch_size:
      raise ValueError(
        f"train_sentences ({self.train_sentences}) must be >= train.batch_size ({self.train.batch_size})"
      )
    return self


CONFIGS = {
  "default": ("k = 0..6 clauses, 2000 steps (the README's numbers)", Config()),
  "smoke": (
    "tiny",
    Config(
      max_clauses=1,
      train_sentences=64,
      test_sentences=4,
      hidden=8,
      embed=8,
      seeds=(0,),
      train=dataclasses.replace(Config().train, steps=2, batch_size=8),
      out="/tmp/seqjax-smoke",
    ),
  ),
}


def sentences(count: int, low: int, high: int, seed: int):
  return generate("translate", count, min_length=low, max_length=high, seed=seed)


@dataclasses.dataclass(frozen=True)
class HeldOut:
  pairs: list  # encoded (source, target) pairs
  references: list[str]
  source_lengths: list[int]


def train(options: dict, vocab: Vocab, train_pairs, config: Config, seed: int):
  model_config = Seq2SeqConfig(len(vocab), len(vocab), embed_dim=config.embed, hidden=config.hidden, **options)
  train_config = dataclasses.replace(config.train, seed=seed)
  longest = (max(len(s) for s, _ in train_pairs), max(len(t) for _, t in train_pairs) + 1)  # one compiled shape

  def batch_fn(step: int, rows: slice) -> dict:
    index = step_indices(seed, step, len(train_pairs), train_config.batch_size)
    return seq2seq_batch([train_pairs[i] for i in index[rows]], source_length=longest[0], target_length=longest[1])

  result = fit(Seq2Seq(model_config, rngs=nnx.Rngs(seed)), teacher_forced_loss, batch_fn, train_config)
  return result.model, result.history[-1]["loss"]


def translate(model, vocab: Vocab, pairs, max_length: int) -> list[str]:
  batch = seq2seq_batch(pairs)
  tokens, _ = decoding.greedy(
    model, batch["src"], batch["src_mask"], max_length=max_length, bos_id=BOS, eos_id=EOS, pad_id=PAD
  )
  return [" ".join(vocab.decode(row)) for row in np.asarray(tokens)]


def evaluate(options: dict, vocab: Vocab, train_pairs, test: HeldOut, config: Config, seed: int) -> dict:
  """Train one model from `seed`; BLEU and exact match over the test set and per length bucket."""
  model, final_loss = train(options, vocab, train_pairs, config, seed)
  hypotheses = translate(model, vocab, test.pairs, max_length=3 + 2 * config.max_clauses + 2)
  references, source_lengths = test.references, test.source_lengths
  edges = [5 + 4 * k for k in range(config.max_clauses + 2)]  # one bucket per clause count
  buckets = bleu_by_length(hypotheses, references, source_lengths, edges)
  exact = []  # per bucket, aligned with bleu_by_length's (every bucket has test sentences)
  for low, high in itertools.pairwise(edges):
    picked = [i for i, n in enumerate(source_lengths) if low <= n < high]
    exact.append(exact_match([hypotheses[i] for i in picked], [references[i] for i in picked]))
  return {
    "seed": seed,
    "final_train_loss": final_loss,
    "bleu": corpus_bleu(hypotheses, references),
    "buckets": buckets,
    "exact_match": exact,
    "examples": list(zip(references[-3:], hypotheses[-3:], strict=True)),
  }


def summary_cells(runs: list[dict]) -> dict[str, str]:
  """Per bucket "mean BLEU / mean exact match [lowest-highest]" over the seeds' runs, and overall BLEU."""
  cells = {}
  for index, bucket in enumerate(runs[0]["buckets"]):
    bleus = [run["buckets"][index]["bleu"] for run in runs]
    exact = [100 * run["exact_match"][index] for run in runs]
    bleu = "n/a" if None in bleus else f"{np.mean(bleus):.1f}"
    cells[f"{bucket['lengths']} words"] = f"{bleu} / {np.mean(exact):.0f}% [{min(exact):.0f}-{max(exact):.0f}]"
  cells["all"] = f"{np.mean([run['bleu'] for run in runs]):.1f}"
  return cells


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  raw_train = sentences(config.train_sentences, 0, config.max_clauses, 0)
  raw_test = [p for k in range(config.max_clauses + 1) for p in sentences(config.test_sentences, k, k, 1000 + k)]
  vocab = Vocab.words(" ".join(s + t) for s, t in raw_train + raw_test)
  encode = lambda pairs: [(vocab.encode(s), vocab.encode(t)) for s, t in pairs]  # noqa: E731
  train_pairs = encode(raw_train)
  test = HeldOut(encode(raw_test), [" ".join(t) for _, t in raw_test], [len(s) for s, _ in raw_test])
  rows, data = [], {}
  for name, options in MODELS.items():
    runs = [evaluate(options, vocab, train_pairs, test, config, seed) for seed in config.seeds]
    data[name] = runs
    rows.append({"model": name, **summary_cells(runs)})
  report.write(
    "bottleneck",
    "Seq2seq quality against sentence length: the fixed-context bottleneck",
    [
      (
        f"BLEU / exact match [lowest-highest] by source length, means over seeds {list(config.seeds)} "
        "(BLEU n/a: references under 4 words); "
        f"{config.test_sentences} test sentences per length, trained on "
        f"{config.train_sentences} sentences of 5-{5 + 4 * config.max_clauses} words, "
        f"{config.train.steps} Adam steps of {config.train.batch_size}, H={config.hidden}, greedy decoding",
        report.markdown_table(rows),
      )
    ],
    {"models": data},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
