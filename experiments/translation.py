"""English -> Spanish on real verses: does the fixed-context encoder-decoder fall with sentence
length faster than the attention models? (seed 000, section 1.6: BLEU 35-40 at 5-10 words,
28-32 at 15-20, 20-25 at 25-30, < 15 at 40+.)

The corpus: the World English Bible and the Reina-Valera 1909 aligned by verse
(`seqjax.data.bible`, ~31k pairs; the WEB's glossary cut from Rev 22:21, the Spanish drop
capitals normalized), split here by a hash of the verse reference (`bible.split_of`):
`test_percent` of the verses are test (8%: ~2,500 verses, so the shortest and longest buckets hold
~100 each), `valid_percent` validation, the rest training. No verse is in two splits; test verses
whose English also stands in training (the Bible repeats itself) are counted and reported. One
sentencepiece vocabulary of `vocab_size` subwords is learned on the training verses of both
languages and serves every model (source, target, and the Transformer's tied embedding).

Four models of 1.30-1.50M parameters at the defaults, and a second, smaller Bahdanau whose count is
the fixed context's (1,297,280 against 1,296,336), trained alike through `fit`:
the same batches of training pairs in the same order for a seed, the same optimizer (Adam,
beta2 `train.adam_b2`), the same schedule (`warmup_rsqrt`: linear warmup to the peak rate, then
1/sqrt(step), never annealed to 0) and label smoothing `label_smoothing` for all:
    fixed context   Sutskever et al. 2014: a 2-layer LSTM encoder reading the source reversed,
                    its final state the decoder's only view of the source
    Bahdanau        additive attention over a bidirectional LSTM encoder (Bahdanau et al. 2014;
                    `bahdanau_hidden_features` per direction); "parameters matched" is the same
                    model at `bahdanau_matched_features`, so attention is compared with the fixed
                    context at equal parameters
    Luong           2-layer LSTM, general (bilinear) scores, input feeding (Luong et al. 2015)
    Transformer     `EncoderDecoder` (sinusoidal positions, tied embeddings), pre-LN or post-LN
They are the library's `Seq2Seq` and `EncoderDecoder`, not `seqjax.zoo` builds: a zoo mixer maps
one sequence to itself (`builder(width, *, causal, rngs)`, [B, T, D] -> [B, T, D]) and has no input
for the source memory an encoder-decoder's cross-attention (or an RNN decoder's attention) reads.
Each model's peak learning rate, and the Transformer's layout, are chosen on the validation split,
never the test split, by the tuning protocol of `harness.sweep`: a pilot of `pilot_steps` steps per
grid point (`learning_rates`, at least 4 log-spaced rates spanning 10x, x `transformer_norms` for
the Transformer), scored by the validation cross-entropy (teacher forced, no smoothing), and while
the best rate sits on the grid's edge up to `extend_grid` pilots one grid step further out; the
grid, each pilot's score and the choice are in the results (with `learning_rates=()`, `large`'s,
no pilots: every model at `train.learning_rate`, the Transformer in `transformer_norms[0]`). Each
model then trains until its greedy validation BLEU (`valid_sentences` verses, every `train.eval_every`
steps) has not improved for `patience` evaluations, or `train.steps` steps: `stopped` says which,
and the model at the stop is the one tested. Training pairs longer than `max_tokens` subwords on
either side are left out (counted). Batches group verses of similar length and pad to a multiple
of `pad_multiple` tokens, so each model compiles a few shapes only. Budgets per run: parameters,
steps, training tokens, nominal training FLOPs (see `nominal_flops`) and seconds on the machine
the provenance names.

Evaluation: beam search (`beam_size`, GNMT length penalty) on the whole test split; sacrebleu
BLEU and chrF by source length in words, in the seed's buckets (1-10, 11-20, 21-30, 31-40, 41+),
with `bootstrap_samples` resamples of each bucket's verses for 95% intervals, and the slope of
BLEU against length (BLEU per 10 source words, with its interval). The source-blind control:
each model decodes the test split again with every source swapped for another test verse's of
the same length bucket; scored against the true references, its BLEU is what the model reaches
without reading the source (Bible-register Spanish of about the right length). A model
translates a bucket only where its BLEU beats that floor by more than `margin` BLEU with the
paired 95% interval above `margin`. Attention on one test verse: Bahdanau's and Luong's
alignments and the Transformer's cross-attention per layer (heads averaged), one colour scale.

Commands (the corpus first: `python -m seqjax.data.bible prepare`, see that module):
    python -m experiments.translation long      # the committed results: until validation stops improving
    python -m experiments.translation default   # the same recipe at a short budget (estimated ~70 min; not yet timed)
    python -m experiments.translation smoke
    python -m experiments.translation large     # one GPU, ~11 min (estimated, not yet run): the papers' widths
"""

import dataclasses
import functools
import itertools
import math
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report, sweep, workdirs
from harness.journal import Journal
from harness.runs import Runs
from seqjax import decoding
from seqjax._paths import path_names
from seqjax.data import bible
from seqjax.data.batching import bucketed_batches, seq2seq_batch
from seqjax.data.subword import Subwords
from seqjax.data.vocab import BOS, EOS, PAD
from seqjax.seq2seq.metrics import bootstrap_by_length, corpus_bleu, corpus_chrf
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss
from seqjax.train import TrainConfig, fit
from seqjax.train.records import cumulative_train_seconds, read_metrics
from seqjax.transformer import EncoderDecoder, EncoderDecoderConfig
from seqjax.zoo import count_params

EDGES = (1, 11, 21, 31, 41, math.inf)  # source words: the buckets around the seed's
SEED_TABLE = {"1-10": "35-40 (5-10 words)", "11-20": "28-32 (15-20)", "21-30": "20-25 (25-30)", "41+": "< 15 (40+)"}
FIXED, BAHDANAU, BAHDANAU_MATCHED, LUONG, TRANSFORMER = (
  "fixed context (Sutskever, reversed source)",
  "Bahdanau (additive, bidirectional encoder)",
  "Bahdanau (parameters matched)",
  "Luong (general, input feeding)",
  "Transformer (small)",
)
MODELS = (FIXED, BAHDANAU, BAHDANAU_MATCHED, LUONG, TRANSFORMER)

# Config fields renamed to the library's names (issue #29), old -> today's (harness.renames); the
# journal fingerprints them under the old names too (`journal`), so no journaled run is voided.
# results/translation.json's `transformer_learning_rate` (the Transformer's own fixed rate beside
# the RNNs' train.learning_rate, before each model's rate was chosen by pilots) has no field today:
# it is not mapped, and that file does not read as today's Config (tests/test_compare.py)
RENAMED = {
  "embed": "embed_dim",
  "hidden": "hidden_features",
  "bahdanau_hidden": "bahdanau_hidden_features",
  "rnn_layers": "rnn_num_layers",
  "heads": "num_heads",
  "layers": "num_layers",
  "dropout": "dropout_rate",
}


@dataclasses.dataclass(frozen=True)
class Config:
  models: tuple[str, ...] = ()  # () = all of MODELS
  vocab_size: int = 2000  # one sentencepiece vocabulary for both languages
  max_tokens: int = 128  # training pairs longer (in subwords, with BOS / EOS) on either side are left out
  pad_multiple: int = 32  # a batch pads to a multiple of this: few compiled shapes
  valid_percent: int = 2  # of the verses (by a hash of the reference): learning-rate choice and the BLEU curve
  test_percent: int = 8  # ~2,500 test verses: ~100 in the shortest and in the longest bucket
  embed_dim: int = 128  # the RNN models' embedding width
  hidden_features: int = 128  # fixed context and Luong: hidden width
  bahdanau_hidden_features: int = 96  # Bahdanau: per encoder direction (and the decoder)
  bahdanau_matched_features: int = 80  # the second Bahdanau's: its parameters the fixed context's (within 0.1%)
  rnn_num_layers: int = 2  # fixed context and Luong (Bahdanau: one, as in the paper)
  dim: int = 128  # the Transformer's width (heads of dim / num_heads)
  num_heads: int = 4
  ff_dim: int = 384  # parameters matched with the RNN models
  num_layers: int = 3  # the Transformer's encoder and decoder layers each
  dropout_rate: float = 0.0  # the Transformer's (the RNN models have none)
  label_smoothing: float = 0.1  # every model's training loss (the 2017 paper's 0.1)
  learning_rates: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2)  # each model's peak rate is tuned on these; (): train's
  transformer_norms: tuple[str, ...] = ("pre", "post")  # the Transformer's layouts tried in the pilots
  pilot_steps: int = 300  # each pilot's steps (warmup: pilot_warmup), scored on the validation split
  pilot_warmup: int = 50
  extend_grid: int = 2  # pilots added past the grid's edge while the best rate is on it
  patience: int = 4  # stop after this many evaluations without a better validation BLEU (0: all train.steps)
  margin: float = 1.0  # BLEU a model must beat its source-blind floor by (interval included) to "translate"
  train: TrainConfig = TrainConfig(
    steps=2000,
    batch_size=64,
    learning_rate=1e-3,  # replaced by each model's chosen rate (with learning_rates=(): every model's)
    schedule="warmup_rsqrt",
    warmup_steps=200,
    adam_b2=0.98,
    clip_norm=1.0,
    log_every=50,
    eval_every=250,
  )
  beam_size: int = 4
  length_penalty: float = 0.6  # GNMT's alpha
  valid_sentences: int = 200  # greedy BLEU on these validation verses every train.eval_every steps
  decode_batch: int = 64  # verses decoded together (verses sorted by length, so few shapes)
  bootstrap_samples: int = 1000
  seeds: tuple[int, ...] = (0,)
  corpus: str = ""  # the prepared corpus folder ("": seqjax.data.bible's default)
  workdir: str = "runs/translation"  # each run's fit workdir ("": <out>/translation-runs)
  out: str = report.default_out("translation")

  def check(self) -> "Config":
    unknown = [m for m in self.models if m not in MODELS]
    if unknown:
      raise ValueError(f"models: unknown {unknown}; known: {list(MODELS)}")
    self.train.check()
    rnn_sizes = (
      "embed_dim", "hidden_features", "bahdanau_hidden_features", "bahdanau_matched_features", "rnn_num_layers"
    )  # fmt: skip
    for name in (*rnn_sizes, "dim", "num_heads", "ff_dim", "num_layers"):  # then the Transformer's
      cli.at_least(name, getattr(self, name), 1)
    cli.at_least("extend_grid", self.extend_grid, 0)
    for name in ("beam_size", "pad_multiple", "pilot_steps", "pilot_warmup"):
      cli.at_least(name, getattr(self, name), 1)
    cli.at_least("vocab_size", self.vocab_size, 16)
    cli.at_least("max_tokens", self.max_tokens, 4)
    cli.at_least("valid_sentences", self.valid_sentences, 1)
    cli.at_least("decode_batch", self.decode_batch, 1)
    cli.at_least("patience", self.patience, 0)
    cli.at_least("bootstrap_samples", self.bootstrap_samples, 10)
    cli.at_least("test_percent", self.test_percent, 1)
    cli.at_least("valid_percent", self.valid_percent, 1)
    if self.test_percent + self.valid_percent > 50:
      raise ValueError(
        "test_percent + valid_percent must leave most verses to train (<= 50), got "
        f"{self.test_percent} + {self.valid_percent}"
      )
    if self.patience and not self.train.eval_every:
      raise ValueError("patience > 0 needs train.eval_every > 0 (the evaluations it counts)")
    if self.dim % (2 * self.num_heads):
      raise ValueError(f"dim ({self.dim}) must be a multiple of 2 x num_heads ({2 * self.num_heads})")
    norms = self.transformer_norms
    if not norms or any(n not in ("pre", "post") for n in norms) or len(set(norms)) < len(norms):
      raise ValueError(f"transformer_norms must be a non-empty tuple of 'pre' / 'post', each once, got {norms}")
    if self.learning_rates:
      sweep.check_grid(self.learning_rates)
    elif len(norms) > 1:
      raise ValueError(
        f"transformer_norms must name one layout when learning_rates is () (no pilots choose one), got {norms}"
      )
    cli.probability("dropout_rate", self.dropout_rate)
    cli.probability("label_smoothing", self.label_smoothing)
    cli.number_at_least("length_penalty", self.length_penalty, 0.0)
    cli.number_at_least("margin", self.margin, 0.0)
    cli.check_seeds(self.seeds)
    return self


LONG_TRAIN = dataclasses.replace(Config().train, steps=16000, warmup_steps=1000, eval_every=500)
CONFIGS = {
  "default": (
    "the long recipe at a short budget: pilots of 150 steps (pre-LN only), 1500 steps of 64 verses, 1 seed",
    Config(pilot_steps=150, transformer_norms=("pre",), train=dataclasses.replace(Config().train, steps=1500)),
  ),
  "long": (
    "vocabulary 2000, 1.3-1.5M parameters each (one Bahdanau matched to the fixed context), trained until "
    "validation BLEU stops improving (<= 16k steps), 1 seed",
    Config(train=LONG_TRAIN, workdir="runs/translation-long"),
  ),
  "smoke": (
    "tiny, on the 80-verse fixture: Luong and the Transformer (one model of each family)",
    Config(
      # every pilot compiles its own step: one RNN with attention and the Transformer run each code
      # path; tests/test_translation.py builds, runs and reads the attention of every model
      models=(LUONG, TRANSFORMER),
      vocab_size=120,
      max_tokens=96,
      pad_multiple=48,  # every training and validation batch 96 tokens long: one compiled shape
      valid_percent=20,
      test_percent=20,
      embed_dim=8,
      hidden_features=8,
      bahdanau_hidden_features=8,
      bahdanau_matched_features=6,
      rnn_num_layers=1,
      dim=8,
      num_heads=2,
      ff_dim=16,
      num_layers=1,
      learning_rates=(1e-3, 3e-3, 1e-2, 3e-2),  # the protocol's smallest grid (harness.sweep)
      transformer_norms=("pre",),
      pilot_steps=2,
      pilot_warmup=1,
      extend_grid=0,  # 8 pilots (tests/test_sweep.py extends grids)
      patience=1,
      train=dataclasses.replace(Config().train, steps=6, batch_size=8, warmup_steps=1, log_every=2, eval_every=2),
      beam_size=2,
      valid_sentences=4,
      decode_batch=32,  # the 22 test verses in one batch: one compiled beam search
      bootstrap_samples=20,
      corpus=str(report.REPO / "tests" / "fixtures" / "bible"),
      workdir="",
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "one GPU, ~11 min (an estimate, not yet run: docs/experiments.md): fixed context vs Bahdanau vs the base "
    "Transformer at the papers' widths, vocabulary 8000, peak rate 1e-3 given (no pilots), 1,000 steps, 1 seed",
    Config(
      # 78.9M, 69.4M and 48.2M parameters (tests/test_translation.py); not matched: the papers' widths
      models=(FIXED, BAHDANAU, TRANSFORMER),
      vocab_size=8000,
      max_tokens=256,  # no training pair left out (the longest: 155 subwords)
      pad_multiple=64,  # seed 0's first 2,000 batches: 2 padded lengths (64, 128) to compile, not 32's 4
      embed_dim=620,  # Bahdanau et al.'s (Sutskever et al.: 1000)
      hidden_features=1000,
      bahdanau_hidden_features=1000,
      rnn_num_layers=4,  # Sutskever et al.'s
      dim=512,  # the 2017 base Transformer
      num_heads=8,
      ff_dim=2048,
      num_layers=6,
      dropout_rate=0.1,
      # no pilots (12 of them would compile 12 training programs: minutes on their own): 1e-3 for
      # every model, scaled from the long run's pilots at width 128 (docs/experiments.md), not validated
      learning_rates=(),
      transformer_norms=("pre",),
      patience=0,  # all 1,000 steps: far from converged, nothing to stop on
      train=dataclasses.replace(Config().train, steps=1000, learning_rate=1e-3, eval_every=250),
      decode_batch=128,
      workdir="runs/translation-large",
      out=report.default_out("translation", "large"),
    ),
  ),
}


# ------------------------------------------------------------------------------------------ data


class TestVerse(NamedTuple):
  source: list[int]  # the English, as subword ids
  spanish: str  # the reference translation
  words: int  # English words (the length buckets' measure)
  verse: str  # e.g. "Gen 2:8"


@dataclasses.dataclass(frozen=True)
class Corpus:
  subwords: Subwords
  train: list  # (source ids, target ids) pairs within max_tokens
  left_out: int  # training pairs longer than max_tokens
  valid: list  # (source ids, target ids) of every validation verse within max_tokens (the pilots' loss)
  valid_texts: list  # (source ids, reference text) of the first valid_sentences validation verses (the BLEU curve)
  test: list[TestVerse]  # every test verse
  overlap: dict  # what the test split shares with training


def load_corpus(config: Config) -> Corpus:
  rows = {split: [] for split in bible.SPLITS}
  for split in bible.SPLITS:  # the prepared 98/1/1 split, split again at this experiment's percentages
    for row in bible.load(split, config.corpus or None):
      rows[bible.split_of(row[0], valid_percent=config.valid_percent, test_percent=config.test_percent)].append(row)
  subwords = Subwords([text for _, en, es in rows["train"] for text in (en, es)], vocab_size=config.vocab_size)
  fits = lambda source, target: max(len(source), len(target)) + 1 <= config.max_tokens  # noqa: E731  (EOS / BOS)
  encoded = [(subwords.encode(en), subwords.encode(es)) for _, en, es in rows["train"]]
  valid = [(subwords.encode(en), subwords.encode(es)) for _, en, es in rows["valid"]]
  train_english = {en for _, en, _ in rows["train"]}
  train_references = {reference for reference, _, _ in rows["train"]}
  overlap = {
    "test verses whose reference is a training verse": sum(r in train_references for r, _, _ in rows["test"]),
    "test verses whose English is a training verse's English": sum(en in train_english for _, en, _ in rows["test"]),
  }
  return Corpus(
    subwords,
    [pair for pair in encoded if fits(*pair)],
    sum(not fits(*pair) for pair in encoded),
    [pair for pair in valid if fits(*pair)],
    [(subwords.encode(en), es) for _, en, es in rows["valid"][: config.valid_sentences]],
    [TestVerse(subwords.encode(en), es, len(en.split()), reference) for reference, en, es in rows["test"]],
    overlap,
  )


def epoch_batches(train: list, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
  """Index batches of similar lengths for one epoch (full batches only), in an order drawn from (seed, epoch)."""
  lengths = [max(len(s), len(t)) for s, t in train]
  batches = bucketed_batches(lengths, batch_size, seed=seed * 100_003 + epoch)
  return [b for b in batches if len(b) == batch_size]


def padded(length: int, multiple: int) -> int:
  return -(-length // multiple) * multiple


def pairs_batch(pairs: list, multiple: int) -> dict:
  """A seq2seq batch of (source, target) pairs, both sides padded to one multiple of `multiple`."""
  length = padded(max(max(len(s), len(t) + 1) for s, t in pairs), multiple)
  return seq2seq_batch(pairs, source_length=length, target_length=length)


def batch_pairs(train: list, batch_size: int, seed: int, step: int, cache: dict) -> list:
  """The training pairs of global batch `step`: a function of (seed, step) alone (a resumed run
  sees the same). cache holds one epoch's index batches."""
  if "per_epoch" not in cache:
    cache["per_epoch"] = len(epoch_batches(train, batch_size, seed, 0))
    if cache["per_epoch"] == 0:
      raise ValueError(f"{len(train)} training pairs do not fill one batch of {batch_size}")
  epoch, index = divmod(step, cache["per_epoch"])
  if cache.get("epoch") != epoch:
    cache["epoch"], cache["batches"] = epoch, epoch_batches(train, batch_size, seed, epoch)
  return [train[i] for i in cache["batches"][index]]


def make_batch_fn(train: list, config: Config, seed: int):
  """fit's batch_fn over `batch_pairs`."""
  cache = {}

  def batch_fn(step: int, rows: slice) -> dict:
    batch = pairs_batch(batch_pairs(train, config.train.batch_size, seed, step, cache), config.pad_multiple)
    return {k: v[rows] for k, v in batch.items()}

  return batch_fn


# ---------------------------------------------------------------------------------------- models


def build(name: str, vocab: int, config: Config, seed: int, norm: str = "pre") -> nnx.Module:
  rngs = nnx.Rngs(seed)
  if name == TRANSFORMER:
    transformer = EncoderDecoderConfig(
      vocab_size=vocab,
      dim=config.dim,
      num_heads=config.num_heads,
      ff_dim=config.ff_dim,
      num_encoder_layers=config.num_layers,
      num_decoder_layers=config.num_layers,
      max_length=2 * config.max_tokens,  # decoding may run to twice the longest source
      norm=norm,
      dropout_rate=config.dropout_rate,
    )
    return EncoderDecoder(transformer, rngs=rngs)
  widths = {BAHDANAU: config.bahdanau_hidden_features, BAHDANAU_MATCHED: config.bahdanau_matched_features}
  width = widths.get(name, config.hidden_features)
  bahdanau = {"attention": "bahdanau", "bidirectional_encoder": True}
  options = {
    FIXED: {"attention": "none", "reverse_source": True, "num_layers": config.rnn_num_layers},
    BAHDANAU: bahdanau,
    BAHDANAU_MATCHED: bahdanau,
    LUONG: {"attention": "luong", "score": "general", "input_feeding": True, "num_layers": config.rnn_num_layers},
  }[name]
  return Seq2Seq(Seq2SeqConfig(vocab, vocab, embed_dim=config.embed_dim, hidden_features=width, **options), rngs=rngs)


def nominal_flops(model: nnx.Module, sums: dict) -> float:
  """Nominal training FLOPs: 3 x the forward pass's multiply-adds x 2, counting matrix products
  only. Each matrix parameter (not an embedding lookup) acts once per token of its side: encoder
  kernels (and Bahdanau's key projection) per source token, all others per target token (the
  Transformer's tied embedding as the output layer per target token). Attention adds its
  score-and-mix products per pair of positions: Bahdanau 2 (A + K) per (target, source) pair
  (A the score width, K the encoder state width), Luong 4 K, the Transformer 4 d per pair in each
  layer's self- and cross-attention. sums: real tokens and pairs trained on, {src, tgt, src_src,
  tgt_tgt, src_tgt} (padding left out)."""
  encoder = decoder = 0
  shapes = {}
  for path, x in jax.tree.leaves_with_path(nnx.state(model, nnx.Param)):
    name = "/".join(path_names(path))
    shapes[name] = x.shape
    if x.ndim < 2 or name.endswith("embedding"):
      continue
    if name.startswith("encoder/") or name.startswith("score/w_key"):
      encoder += int(np.prod(x.shape))
    else:
      decoder += int(np.prod(x.shape))
  pairs = 0.0
  if isinstance(model, EncoderDecoder):
    decoder += int(np.prod(shapes["source_embed/tokens/embedding"]))  # the tied output layer
    width = model.config.num_heads * (model.config.head_dim or model.config.dim // model.config.num_heads)
    pairs = (
      4
      * width
      * (
        model.config.num_encoder_layers * sums["src_src"]
        + model.config.num_decoder_layers * (sums["tgt_tgt"] + sums["src_tgt"])
      )
    )
  elif "score/v/kernel" in shapes:  # additive
    pairs = 2 * (shapes["score/v/kernel"][0] + shapes["score/w_key/kernel"][0]) * sums["src_tgt"]
  elif "score/w_general/kernel" in shapes:
    pairs = 4 * shapes["score/w_general/kernel"][0] * sums["src_tgt"]
  return 3.0 * (2.0 * (encoder * sums["src"] + decoder * sums["tgt"]) + pairs)


def trained_sums(train: list, config: Config, seed: int, steps: int) -> dict:
  """Real source and target tokens (target: with EOS) and position pairs in the first `steps`
  batches of a seed."""
  cache, sums = {}, dict.fromkeys(("src", "tgt", "src_src", "tgt_tgt", "src_tgt"), 0)
  for step in range(steps):
    for source, target in batch_pairs(train, config.train.batch_size, seed, step, cache):
      s, t = len(source), len(target) + 1
      for key, value in (("src", s), ("tgt", t), ("src_src", s * s), ("tgt_tgt", t * t), ("src_tgt", s * t)):
        sums[key] += value
  return sums


# -------------------------------------------------------------------------------------- decoding


def translate(model, sources: list, config: Config, *, beam: bool) -> list[list[int]]:
  """Token ids of each source's translation. Sources are decoded `decode_batch` at a time in order
  of length, each chunk padded to a multiple of pad_multiple and given up to twice that many new
  tokens (a short last chunk is filled with copies of its first source, then dropped)."""
  order = np.argsort([len(s) for s in sources], kind="stable")
  out = [None] * len(sources)
  for start in range(0, len(sources), config.decode_batch):
    picked = order[start : start + config.decode_batch]
    chunk = [sources[i] for i in picked]
    filled = chunk + [chunk[0]] * (config.decode_batch - len(chunk))
    length = padded(max(len(s) for s in chunk), config.pad_multiple)
    new_tokens = 2 * length
    if isinstance(model, EncoderDecoder):
      new_tokens = min(new_tokens, model.config.max_length - 1)
    batch = seq2seq_batch([(s, [EOS]) for s in filled], source_length=length)
    prompt = np.full((len(filled), 1), BOS, np.int32)
    ids = {"max_new_tokens": new_tokens, "eos_id": EOS, "pad_id": PAD, "suppress": (BOS,)}
    context = {"src": jnp.asarray(batch["src"]), "src_mask": jnp.asarray(batch["src_mask"])}
    if beam:
      tokens, _ = decoding.beam_search(
        model, prompt, beam_size=config.beam_size, length_penalty=config.length_penalty, **ids, **context
      )
      tokens = tokens[:, 0]  # [B, L]: the best hypothesis
    else:
      tokens, _ = decoding.greedy(model, prompt, **ids, **context)
    for index, row in zip(picked, np.asarray(tokens), strict=False):
      out[index] = [int(t) for t in row]
  return out


def text(subwords: Subwords, tokens: list[int]) -> str:
  """A translation's text: its tokens up to the first EOS."""
  return subwords.decode(tokens[: tokens.index(EOS)] if EOS in tokens else tokens)


@functools.partial(jax.jit, static_argnums=0)
def valid_sums(graphdef: nnx.GraphDef, state: nnx.State, batch: dict):
  """(summed target cross-entropy, target tokens) of one validation batch (no label smoothing):
  traced and compiled once per model structure (the static graphdef) and batch shape, whatever
  model object or parameters it is given."""
  loss, metrics = teacher_forced_loss(nnx.merge(graphdef, state), batch)
  return loss * metrics["tokens"], metrics["tokens"]


def valid_loss_fn(corpus: Corpus, config: Config):
  """model -> the validation split's mean target cross-entropy (nats/token, teacher forced, no
  label smoothing), over every validation pair, in batches of similar lengths."""
  order = sorted(range(len(corpus.valid)), key=lambda i: max(len(s) for s in corpus.valid[i]))
  size = config.train.batch_size
  batches = [
    pairs_batch([corpus.valid[i] for i in order[j : j + size]], config.pad_multiple) for j in range(0, len(order), size)
  ]
  batches = [{k: jnp.asarray(v) for k, v in batch.items()} for batch in batches]

  def valid_loss(model) -> float:
    sums = [valid_sums(*nnx.split(model), batch) for batch in batches]
    return float(sum(float(s) for s, _ in sums) / sum(float(c) for _, c in sums))

  return valid_loss


def evaluation(corpus: Corpus, config: Config):
  """fit's evaluate: greedy BLEU on the first valid_sentences validation verses and the
  validation cross-entropy."""
  sources = [s for s, _ in corpus.valid_texts]
  references = [r for _, r in corpus.valid_texts]
  valid_loss = valid_loss_fn(corpus, config)

  def evaluate(model) -> dict:
    hypotheses = [text(corpus.subwords, t) for t in translate(model, sources, config, beam=False)]
    return {"valid_bleu": corpus_bleu(hypotheses, references), "valid_loss": valid_loss(model)}

  return evaluate


def alignment(model, source: list[int], target: list[int]) -> np.ndarray:
  """Attention over the source [T, S] for each target position of tgt_in = BOS + target (Seq2Seq),
  or per decoder layer [L, T, S], heads averaged (Transformer)."""
  src = jnp.asarray([source], jnp.int32)
  tgt_in = jnp.asarray([[BOS, *target]], jnp.int32)
  mask = jnp.ones(src.shape, jnp.bool_)
  if isinstance(model, EncoderDecoder):
    return np.asarray(model.attention_weights(src, tgt_in, src_mask=mask)["cross"][:, 0].mean(1))  # [L, T, S]
  _, attention = model(src, tgt_in, mask)
  return np.asarray(attention[0])  # [T, S]


def source_blind(test: list[TestVerse], seed: int) -> list[list[int]]:
  """Each test verse's source replaced by another test verse's of the same length bucket (a
  random cycle through the bucket, so no verse keeps its own): the control's inputs."""
  rng = np.random.default_rng(seed)
  words = np.array([v.words for v in test])
  swapped = [v.source for v in test]
  for low, high in itertools.pairwise(EDGES):
    members = rng.permutation(np.flatnonzero((words >= low) & (words < high)))
    for i, j in zip(members, np.roll(members, 1), strict=True):
      swapped[i] = test[j].source
  return swapped


# ------------------------------------------------------------------------------ tuning and training


def train_config(config: Config, seed: int, learning_rate: float, *, pilot: bool) -> TrainConfig:
  if pilot:  # a short run at the peak rate: warmup pilot_warmup, evaluated at its last step only
    return dataclasses.replace(
      config.train, seed=seed, learning_rate=learning_rate, steps=config.pilot_steps,
      warmup_steps=config.pilot_warmup, eval_every=0,
    )  # fmt: skip
  return dataclasses.replace(
    config.train, seed=seed, learning_rate=learning_rate, save_every=config.train.save_every or config.train.eval_every
  )


def training_loss(config: Config):
  """Every model's training loss_fn: the teacher-forced cross-entropy with label smoothing."""
  return functools.partial(teacher_forced_loss, label_smoothing=config.label_smoothing)


def pilot(name: str, norm: str, learning_rate: float, corpus: Corpus, config: Config) -> dict:
  """One grid point: pilot_steps steps from seed 0's init and batches (no workdir), scored by the
  validation cross-entropy."""
  loss_fn = training_loss(config)
  model = build(name, len(corpus.subwords), config, config.seeds[0], norm)
  train = train_config(config, config.seeds[0], learning_rate, pilot=True)
  valid_loss = valid_loss_fn(corpus, config)
  started = time.perf_counter()
  result = fit(
    model,
    loss_fn,
    make_batch_fn(corpus.train, config, config.seeds[0]),
    train,
    evaluate=lambda m: {"valid_loss": valid_loss(m)},
  )
  score = result.history[-1]["valid_loss"]
  return {"norm": norm, "learning_rate": learning_rate, "valid_loss": score if math.isfinite(score) else None,
          "train_loss": result.history[-1]["loss"], "seconds": time.perf_counter() - started}  # fmt: skip


def train_until_stale(
  model_fn, loss_fn, batch_fn, train: TrainConfig, workdir: Path, run: dict, evaluate, patience: int
):
  """fit in pieces of train.eval_every steps until validation BLEU has not improved for `patience`
  evaluations or train.steps are done. Each piece resumes the workdir's checkpoint, so a killed
  run resumes where it stopped; the curve is read back from the workdir's metrics. -> (FitResult
  of the last piece, its whole validation curve [(step, BLEU, loss)], why it stopped)."""
  while True:
    result = fit(model_fn(), loss_fn, batch_fn, train, workdir=workdir, run_config=run,
                 stop_after=train.eval_every if patience else None, evaluate=evaluate)  # fmt: skip
    curve = [(r["step"], r["valid_bleu"], r["valid_loss"]) for r in read_metrics(workdir) if "valid_bleu" in r]
    best = max(range(len(curve)), key=lambda i: curve[i][1])
    if result.step >= train.steps:
      return result, curve, "train.steps reached"
    if patience and len(curve) - 1 - best >= patience:
      return result, curve, f"validation BLEU not improved for {patience} evaluations"


def run_record(name: str, seed: int, choice: dict, journaled: Journal) -> dict:
  """What identifies a seed's run in its fit workdir (config.json; harness.workdirs names the
  workdir by it): the model, seed, chosen layout and learning rate, and the fingerprint of its family's
  journal, which holds every field the run depends on (renamed ones under their old names), not
  the selection fields or where files go. So a renamed knob or a moved out/workdir resumes the run."""
  chosen = {"norm": choice["norm"], "learning_rate": choice["learning_rate"]}  # not the pilot's score or seconds
  return {"model": name, "seed": seed, "choice": chosen, "journal_fingerprint": journaled.fingerprint}


def run_one(
  name: str, seed: int, choice: dict, corpus: Corpus, config: Config, run: dict, runs_dir: Path, example: int
) -> dict:
  """Trains (or resumes) one seed's run in its workdir under runs_dir -> the run's journal record."""
  loss_fn = training_loss(config)
  train = train_config(config, seed, choice["learning_rate"], pilot=False)
  model_fn = lambda: build(name, len(corpus.subwords), config, seed, choice["norm"])  # noqa: E731
  workdir = workdirs.run_workdir(runs_dir, f"{name.split(' ')[0].lower()}-seed{seed}", run)
  started = time.perf_counter()
  result, curve, stopped = train_until_stale(
    model_fn, loss_fn, make_batch_fn(corpus.train, config, seed), train, workdir, run,
    evaluation(corpus, config), config.patience,
  )  # fmt: skip
  model = result.model  # decoding passes no dropout key: no dropout
  train_seconds = cumulative_train_seconds(read_metrics(workdir))[-1]
  decode_started = time.perf_counter()
  test_sources = [verse.source for verse in corpus.test]
  tokens = translate(model, test_sources, config, beam=True)
  blind = translate(model, source_blind(corpus.test, seed), config, beam=True)
  hypotheses = [text(corpus.subwords, t) for t in tokens]
  references = [verse.spanish for verse in corpus.test]
  words = [verse.words for verse in corpus.test]
  kept = tokens[example][: tokens[example].index(EOS)] if EOS in tokens[example] else tokens[example]
  sums = trained_sums(corpus.train, config, seed, result.step)
  scored = bootstrap_by_length(
    hypotheses, references, words, EDGES, floor=[text(corpus.subwords, t) for t in blind],
    samples=config.bootstrap_samples, seed=seed,
  )  # fmt: skip
  return {
    "model": name,
    "seed": seed,
    "choice": choice,
    "parameters": count_params(model),
    "steps": result.step,
    "stopped": stopped,
    "train_tokens": {"source": sums["src"], "target": sums["tgt"]},
    "train_flops": nominal_flops(model, sums),
    "final_train_loss": result.history[-1]["loss"],
    "curve": curve,
    "train_seconds": train_seconds,
    "decode_seconds": time.perf_counter() - decode_started,
    "seconds": time.perf_counter() - started,
    "bleu": corpus_bleu(hypotheses, references),
    "chrf": corpus_chrf(hypotheses, references),
    "floor_bleu": corpus_bleu([text(corpus.subwords, t) for t in blind], references),
    "buckets": scored["buckets"],
    "slope": scored["slope"],
    "floor_slope": scored.get("floor_slope"),
    "hypotheses": hypotheses,
    "example": {"target": kept, "attention": alignment(model, corpus.test[example].source, kept).tolist()},
  }


def pick_example(corpus: Corpus) -> int:
  """The first test verse of 12 to 20 words (short enough for a readable heatmap), else the shortest."""
  for index, verse in enumerate(corpus.test):
    if 12 <= verse.words <= 20:
      return index
  return int(np.argmin([verse.words for verse in corpus.test]))


# ---------------------------------------------------------------------------------------- report


def interval(low, high) -> str:
  return "n/a" if low is None else f"[{low:.1f}, {high:.1f}]"


def translates(bucket: dict, margin: float) -> bool:
  """The model beats its source-blind floor in this bucket by more than margin BLEU, the paired
  interval's low end included."""
  return bucket.get("gain_low") is not None and bucket["gain_low"] > margin


def table(runs: list[dict], config: Config) -> list[dict]:
  """One row per run: choice, budget, and per bucket BLEU [95% interval] with the floor."""
  rows = []
  for run in runs:
    row = {
      "model": run["model"],
      "seed": run["seed"],
      "parameters": f"{run['parameters']:,}",
      "peak lr": f"{run['choice']['learning_rate']:g}"
      + (f" ({run['choice']['norm']}-LN)" if run["model"] == TRANSFORMER else ""),
      "steps": f"{run['steps']:,}" + ("" if run["stopped"].startswith("validation") else " (not converged)"),
      "train PFLOPs": f"{run['train_flops'] / 1e15:.2f}",
      "train min": f"{run['train_seconds'] / 60:.0f}",
    }
    for bucket in run["buckets"]:
      bleu = (
        "n/a" if bucket["bleu"] is None else f"{bucket['bleu']:.1f} {interval(bucket['bleu_low'], bucket['bleu_high'])}"
      )
      floor = (
        ""
        if bucket.get("floor_bleu") is None
        else f" / {bucket['floor_bleu']:.1f}" + ("" if translates(bucket, config.margin) else " x")
      )
      row[f"{bucket['lengths']} words ({bucket['sentences']})"] = bleu + floor
    row["all: BLEU / floor"] = f"{run['bleu']:.1f} / {run['floor_bleu']:.1f}"
    row["chrF"] = f"{run['chrf']:.1f}"
    slope = run["slope"]
    row["BLEU per 10 words"] = f"{slope['value']:+.1f} {interval(slope['low'], slope['high'])}"
    rows.append(row)
  seed_row = dict.fromkeys(rows[0], "") | {"model": "the seed (an RNN encoder-decoder, BLEU)"}
  for bucket in runs[0]["buckets"]:
    seed_row[f"{bucket['lengths']} words ({bucket['sentences']})"] = SEED_TABLE.get(bucket["lengths"], "")
  return [*rows, seed_row]


def pilot_table(pilots: dict[str, list[dict]], choices: dict[str, dict]) -> list[dict]:
  rows = []
  for name, grid in pilots.items():
    for p in grid:
      chosen = p["learning_rate"] == choices[name]["learning_rate"] and p["norm"] == choices[name]["norm"]
      rows.append({
        "model": name,
        "layout": f"{p['norm']}-LN" if name == TRANSFORMER else "",
        "peak lr": f"{p['learning_rate']:g}",
        "valid loss (nats/token)": "diverged" if p["valid_loss"] is None else f"{p['valid_loss']:.3f}",
        "train loss": f"{p['train_loss']:.3f}",
        "chosen": "yes" if chosen else "",
      })  # fmt: skip
  return rows


def draw_buckets(runs: list[dict], names: list[str], config: Config) -> Path:
  fig, (bleu_ax, curve_ax) = figures.figure(13, 4.8, columns=2)
  first = runs[0]["buckets"]
  x = np.arange(len(first))
  for offset, name in zip(np.linspace(-0.15, 0.15, len(names)), names, strict=True):
    for run in (r for r in runs if r["model"] == name):
      buckets = run["buckets"]
      y = np.array([np.nan if b["bleu"] is None else b["bleu"] for b in buckets])
      low = np.array([np.nan if b["bleu_low"] is None else b["bleu_low"] for b in buckets])
      high = np.array([np.nan if b["bleu_high"] is None else b["bleu_high"] for b in buckets])
      floor = np.array([np.nan if b.get("floor_bleu") is None else b["floor_bleu"] for b in buckets])
      label = f"{name}, seed {run['seed']}"
      bars = bleu_ax.errorbar(x + offset, y, yerr=[y - low, high - y], marker="o", capsize=3, label=label)
      bleu_ax.plot(x + offset, floor, linestyle=":", marker="x", color=bars[0].get_color())
      steps, bleus, _ = zip(*run["curve"], strict=True)
      curve_ax.plot(steps, bleus, marker=".", color=bars[0].get_color(), label=label)
  seed_low = {"1-10": (35, 40), "11-20": (28, 32), "21-30": (20, 25), "41+": (0, 15)}
  for i, b in enumerate(first):
    if b["lengths"] in seed_low:
      lo, hi = seed_low[b["lengths"]]
      bleu_ax.fill_between(
        [i - 0.3, i + 0.3], lo, hi, color="grey", alpha=0.25, label="the seed's table" if i == 0 else None
      )
  bleu_ax.plot([], [], linestyle=":", marker="x", color="black", label="source-blind floor (other verses' sources)")
  bleu_ax.set_xticks(x, [f"{b['lengths']}\n({b['sentences']} verses)" for b in first])
  bleu_ax.set_xlabel("source verse length (English words)")
  bleu_ax.set_ylabel("test BLEU (sacrebleu), 95% bootstrap interval")
  bleu_ax.legend(fontsize=7)
  curve_ax.set_xlabel(f"training step ({config.train.batch_size} verse pairs each)")
  curve_ax.set_ylabel(f"validation BLEU (greedy, {config.valid_sentences} verses)")
  curve_ax.legend(fontsize=7)
  for ax in (bleu_ax, curve_ax):
    ax.grid(alpha=0.3)
  fig.suptitle(
    "EN->ES translation quality against source length on held-out Bible verses\n"
    f"(beam {config.beam_size}; each model at its own validated learning rate, trained until validation BLEU "
    f"stopped improving or for {config.train.steps:,} steps: the table says which)",
    fontsize=10,
  )
  return figures.save(fig, config.out, "translation")


def draw_attention(runs: list[dict], names: list[str], corpus: Corpus, example: int, config: Config) -> Path:
  first = {r["model"]: r for r in runs if r["seed"] == config.seeds[0]}
  panels = []  # (title, [T, S] weights, target ids)
  for name in names:
    if name == FIXED:
      continue  # no attention: its decoder sees one vector
    weights = np.array(first[name]["example"]["attention"])
    target = first[name]["example"]["target"]
    if weights.ndim == 3:
      panels += [(f"{name}\ncross-attention, layer {i + 1} (heads averaged)", w, target) for i, w in enumerate(weights)]
    else:
      panels.append((name, weights, target))
  if not panels:
    return None
  top = max(float(w[: len(t) + 1].max()) for _, w, t in panels)  # one colour scale for every panel
  source = [corpus.subwords.processor.id_to_piece(int(i)) for i in corpus.test[example].source]
  columns = min(3, len(panels))
  rows = -(-len(panels) // columns)
  fig, axes = figures.figure(5.5 * columns, 5.0 * rows, columns=columns, rows=rows)
  axes = np.atleast_1d(axes).ravel()
  for ax, (title, weights, target) in zip(axes, panels, strict=False):
    shown = weights[: len(target) + 1]  # the steps that produced the translation and its EOS
    image = ax.imshow(shown, cmap="viridis", aspect="auto", vmin=0.0, vmax=top)
    ax.set_xticks(range(len(source)), source, rotation=90, fontsize=6)
    pieces = [corpus.subwords.processor.id_to_piece(int(i)) for i in target] + ["</s>"]
    ax.set_yticks(range(len(pieces)), pieces, fontsize=6)
    ax.set_xlabel("source subword (English)")
    ax.set_ylabel("output subword (the model's Spanish)")
    ax.set_title(title, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.04, label=f"attention weight (0 to {top:.2f}, every panel)")
  for ax in axes[len(panels) :]:
    ax.axis("off")
  fig.suptitle(
    f"Where each model looks while translating test verse {corpus.test[example].verse} (seed {config.seeds[0]})",
    fontsize=10,
  )
  return figures.save(fig, config.out, "translation_attention")


FAMILY_FIELDS = {  # the Config fields only some families' runs read (each journal's beside the shared ones)
  "RNN": ("embed_dim", "hidden_features", "bahdanau_hidden_features", "rnn_num_layers"),
  TRANSFORMER: ("dim", "num_heads", "ff_dim", "num_layers", "dropout_rate", "transformer_norms"),
  # a family of its own, added after the others' runs were journaled: its width enters no other
  # journal's fingerprint, so adding it kept theirs
  BAHDANAU_MATCHED: ("embed_dim", "bahdanau_matched_features"),
}


def family(name: str) -> str:
  """The journal (FAMILY_FIELDS' key) a model's pilots and runs are kept in: its own where it has
  one, else the RNNs'."""
  return name if name in FAMILY_FIELDS else "RNN"


def journal(config: Config, name: str) -> Journal:
  """The journal of one family's runs and pilots (`name`: a FAMILY_FIELDS key): a run depends on
  every field but the selection fields and those only other families read (FAMILY_FIELDS), so a change to the
  Transformer's width keeps the RNN runs (every family's lines share one file, told apart by their
  fingerprints). A field renamed since (RENAMED) enters the fingerprint under its old name."""
  some = {f for fields in FAMILY_FIELDS.values() for f in fields}  # the fields not every family reads
  # extend_grid only decides which pilots run (each keyed by its rate) and so the chosen rate,
  # which is part of a run's key
  ignored = {"models", "seeds", "workdir", "out", "margin", "bootstrap_samples", "extend_grid"}
  ignored |= some - set(FAMILY_FIELDS[name])
  fields = tuple(f for f in Config.__dataclass_fields__ if f not in ignored)
  # runs were journaled (the long run's: results/translation.runs.jsonl) before RENAMED's renames
  journaled_as = {new: old for old, new in RENAMED.items() if new in fields}
  return Journal("translation", config, fields=fields, renamed=journaled_as)


def variants(name: str, config: Config) -> tuple[str, ...]:
  """The layouts a model's pilots try beside the rate: the Transformer's norms, else none."""
  return config.transformer_norms if name == TRANSFORMER else (sweep.NO_VARIANT,)


def tune(name: str, corpus: Corpus, config: Config, journaled: Journal, plan: Runs) -> sweep.Tuning:
  """Every pilot of one model and the chosen one, by harness.sweep's protocol: pilots of
  pilot_steps steps over learning_rates x the model's layouts, scored by the validation
  cross-entropy, up to extend_grid more past the grid's edge (journaled, announced in plan).
  Without a grid (learning_rates=()) no pilot: the given choice (`given`)."""
  if not config.learning_rates:
    return given(name, config)
  return sweep.tune(
    name, lambda norm, rate: pilot(name, norm, rate, corpus, config), journaled, plan,
    learning_rates=config.learning_rates, seed=config.seeds[0], score="valid_loss", variants=variants(name, config),
    extend=config.extend_grid,
  )  # fmt: skip


def given(name: str, config: Config) -> sweep.Tuning:
  """A model's choice without pilots (learning_rates=()): train.learning_rate in its first layout,
  as a Tuning of that one choice, so its seeds' runs are journaled under the keys a tuned choice of
  the same rate and layout has."""
  variant = variants(name, config)[0]
  rate = config.train.learning_rate
  choice = {"norm": variant, "learning_rate": rate, "given": True}
  return sweep.Tuning(name, name, (), (variant,), "valid_loss", ((variant, rate),), (choice,), 0)


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  names = list(config.models or MODELS)
  started = time.perf_counter()
  corpus = load_corpus(config)
  example = pick_example(corpus)
  print(
    f"corpus: {len(corpus.train):,} training pairs ({corpus.left_out} longer than {config.max_tokens} subwords left "
    f"out), {len(corpus.valid)} validation and {len(corpus.test)} test verses, vocabulary {len(corpus.subwords)}; "
    f"overlap {corpus.overlap}",
    flush=True,
  )
  journals = {name: journal(config, name) for name in dict.fromkeys(map(family, names))}  # the selected families
  pilot_count = sum(len(sweep.grid(config.learning_rates, variants(name, config))) for name in names)
  plan = Runs(pilot_count + len(names) * len(config.seeds))  # extensions past the grid are added as they run
  tunings = {}
  for name in names:
    tunings[name] = tune(name, corpus, config, journals[family(name)], plan)
    given_line = f"{name}: peak lr {config.train.learning_rate:g}, given (learning_rates=(): no pilots)"
    print(tunings[name].line() if config.learning_rates else given_line, flush=True)
  pilots = {name: list(tuning.pilots) for name, tuning in tunings.items() if config.learning_rates}
  choices = {name: tuning.choice for name, tuning in tunings.items()}
  runs_dir = Path(config.workdir or Path(config.out) / "translation-runs")
  runs = []
  for seed in config.seeds:
    for name in names:
      run = run_record(name, seed, choices[name], journals[family(name)])
      train = lambda n=name, s=seed, r=run: run_one(n, s, choices[n], corpus, config, r, runs_dir, example)  # noqa: E731
      record = sweep.train_seed(tunings[name], seed, train, journals[family(name)], plan)
      runs.append(record)
      print(
        f"seed {seed} {name}: BLEU {record['bleu']:.2f} (floor {record['floor_bleu']:.2f}), "
        f"{record['steps']} steps, {record['stopped']}",
        flush=True,
      )
  paths = [draw_buckets(runs, names, config), draw_attention(runs, names, corpus, example, config)]
  counts = {b["lengths"]: b["sentences"] for b in runs[0]["buckets"]}
  setup = (
    f"{len(corpus.train):,} training verse pairs ({corpus.left_out} longer than {config.max_tokens} subwords left "
    f"out), {len(corpus.valid)} validation verses, {len(corpus.test)} test verses {counts} (split by a hash of the "
    f"reference: {config.test_percent}% test, {config.valid_percent}% validation); overlap with training: "
    f"{corpus.overlap}. Vocabulary: {len(corpus.subwords)} sentencepiece subwords shared by both languages. Each "
    f"model: batches of {config.train.batch_size} verse pairs (the same batches per seed), Adam (beta2 "
    f"{config.train.adam_b2}), {config.train.schedule} (warmup {config.train.warmup_steps}), label smoothing "
    f"{config.label_smoothing}, clip {config.train.clip_norm}; at most {config.train.steps} steps, stopped when "
    f"validation BLEU had not improved for {config.patience} evaluations (every {config.train.eval_every} steps); "
    f"seeds {list(config.seeds)}{sweep.seeds_note(config.seeds)} (init and batch order). Beam {config.beam_size}, "
    f"length penalty {config.length_penalty}. Intervals: 95% bootstrap over the bucket's verses "
    f"({config.bootstrap_samples} resamples). After each BLEU: ' / floor', the same model on other verses' sources "
    f"of the same bucket; 'x' marks a bucket where the model does not beat its floor by more than {config.margin} "
    "BLEU (paired interval)."
  )
  sections = [
    (
      "BLEU [95% interval] / source-blind floor by source length (English words; verses per bucket)",
      report.markdown_table(table(runs, config)),
    ),
    (
      "Learning-rate pilots (validation split, seed 0's init and batches)",
      report.markdown_table(pilot_table(pilots, choices))
      if pilots
      else f"None: every model at the given peak rate {config.train.learning_rate:g} (learning_rates=()).",
    ),
    ("Setup", setup),
    ("Figures", "\n\n".join(f"![{p.stem}]({p.name})" for p in paths if p is not None)),
  ]
  data = {
    "runs": runs,
    "pilots": pilots,
    "choices": choices,
    "test_verses": counts,
    "overlap": corpus.overlap,
    "train_pairs": len(corpus.train),
    "left_out": corpus.left_out,
    "example": corpus.test[example].verse,
    "seeds": list(config.seeds),
    "seconds_this_process": time.perf_counter() - started,  # runs read back from the journal cost nothing here
    "runs_resumed_from_journal": sum(j.resumed for j in journals.values()),
  }
  title = "EN->ES translation on the Bible: quality against source length"
  report.write("translation", title, sections, data, config=config, script=__spec__.name, argv=argv)
  print(f"trained models (fit workdirs, one per model and seed): {runs_dir}")


if __name__ == "__main__":
  main()
