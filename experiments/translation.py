"""English -> Spanish on real verses: does the fixed-context encoder-decoder fall with sentence
length faster than the attention models? (seed 000, section 1.6: BLEU 35-40 at 5-10 words,
28-32 at 15-20, 20-25 at 25-30, < 15 at 40+.)

The corpus: the World English Bible and the Reina-Valera 1909 aligned by verse
(`seqjax.data.bible`, ~31k pairs; the WEB's glossary cut from Rev 22:21, the Spanish drop
capitals normalized). Its train / valid / test splits are by a hash of the verse reference, so
no verse is in two splits (the English sentences of test verses found verbatim among the training
verses, the Bible's repeated verses, are counted and reported). One sentencepiece vocabulary of
`vocab_size` subwords is learned on the training verses of both languages and serves every
model (source, target, and the Transformer's tied embedding).

Four models, trained alike through `fit` (the same batches of training pairs in the same order
for a seed, so the same tokens; the same optimizer, schedule and steps; one learning rate for the
RNNs, `train.learning_rate`, and a lower one for the Transformer, `transformer_learning_rate`:
in the 2017 post-LN layout it stalls at the unigram loss at the RNNs' 3e-3, see docs/experiments.md):
    fixed context   Sutskever et al. 2014: a 2-layer LSTM encoder reading the source reversed,
                    its final state the decoder's only view of the source
    Bahdanau        additive attention over a bidirectional LSTM encoder (Bahdanau et al. 2014)
    Luong           2-layer LSTM, general (bilinear) scores, input feeding (Luong et al. 2015)
    Transformer     `EncoderDecoder` in the 2017 base layout (post-LN, sinusoidal positions,
                    tied embeddings; dropout `dropout`) at a small width
Training pairs longer than `max_tokens` subwords on either side are left out (counted). Batches
group verses of similar length (`bucketed_batches`, a fresh order each epoch, drawn from the seed)
and pad to a multiple of `pad_multiple` tokens, so each model compiles a few shapes only.

Evaluation: beam search (`beam_size`, GNMT length penalty) on the whole test split; sacrebleu
BLEU and chrF overall and by source length in words, in the seed's buckets (1-10, 11-20, 21-30,
31-40, 41+), with the number of verses per bucket; mean over seeds with the lowest and highest.
Greedy BLEU on `valid_sentences` validation verses every `train.eval_every` steps (the curve).
Attention on one test verse: Bahdanau's and Luong's alignments and the Transformer's
cross-attention per layer (heads averaged), each over the model's own translation.

Commands (the corpus first: `python -m seqjax.data.bible prepare`, see that module):
    python -m experiments.translation default   # 4 models x 2 seeds, ~85 minutes on 2 CPU cores (the README's numbers)
    python -m experiments.translation smoke
    python -m experiments.translation large     # for an accelerator: the papers' widths, 3 seeds
"""

import dataclasses
import math
import time
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from flax import nnx

from harness import cli, figures, report
from harness.journal import Journal
from harness.sizing import count_params
from seqjax import _validate, decoding
from seqjax.data import bible
from seqjax.data.batching import bucketed_batches, seq2seq_batch
from seqjax.data.subword import Subwords
from seqjax.data.vocab import BOS, EOS, PAD
from seqjax.seq2seq.metrics import bleu_by_length, corpus_bleu, corpus_chrf
from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss
from seqjax.train import TrainConfig, fit
from seqjax.transformer import EncoderDecoder, EncoderDecoderConfig

EDGES = (1, 11, 21, 31, 41, math.inf)  # source words: the buckets around the seed's
SEED_TABLE = {"1-10": "35-40 (5-10 words)", "11-20": "28-32 (15-20)", "21-30": "20-25 (25-30)", "41+": "< 15 (40+)"}
FIXED, BAHDANAU, LUONG, TRANSFORMER = (
  "fixed context (Sutskever, reversed source)",
  "Bahdanau (additive, bidirectional encoder)",
  "Luong (general, input feeding)",
  "Transformer (2017 base layout, small)",
)
MODELS = (FIXED, BAHDANAU, LUONG, TRANSFORMER)


@dataclasses.dataclass(frozen=True)
class Config:
  models: tuple[str, ...] = ()  # () = all of MODELS
  vocab_size: int = 2000  # one sentencepiece vocabulary for both languages
  max_tokens: int = 128  # training pairs longer (in subwords, with BOS / EOS) on either side are left out
  pad_multiple: int = 32  # a batch pads to a multiple of this: few compiled shapes
  embed: int = 128  # the RNN models' embedding width
  hidden: int = 128  # the RNN models' hidden width (Bahdanau: per encoder direction)
  rnn_layers: int = 2  # fixed context and Luong (Bahdanau: one, as in the paper)
  dim: int = 128  # the Transformer's width (heads of dim / heads)
  heads: int = 4
  ff_dim: int = 256
  layers: int = 3  # encoder and decoder layers each
  dropout: float = 0.0  # the Transformer's (the RNN models have none); 2 epochs underfit, regularizing only slows
  transformer_learning_rate: float = 1e-3  # train.learning_rate is the RNNs'; at 3e-3 the post-LN Transformer stalls
  train: TrainConfig = TrainConfig(
    steps=1000,
    batch_size=64,
    learning_rate=3e-3,
    schedule="warmup_cosine",
    warmup_steps=100,
    clip_norm=1.0,
    log_every=50,
    eval_every=250,
    progress=False,
  )
  beam_size: int = 4
  length_penalty: float = 0.6  # GNMT's alpha
  valid_sentences: int = 64  # greedy BLEU on these validation verses every train.eval_every steps
  decode_batch: int = 64  # test verses decoded together (one compiled shape)
  seeds: tuple[int, ...] = (0, 1)
  corpus: str = ""  # the prepared corpus folder ("": seqjax.data.bible's default)
  workdir: str = "runs/translation"  # each run's fit workdir ("": <out>/translation-runs)
  out: str = str(report.RESULTS)

  def check(self) -> "Config":
    unknown = [m for m in self.models if m not in MODELS]
    if unknown:
      raise ValueError(f"models: unknown {unknown}; known: {list(MODELS)}")
    self.train.check()
    for name in ("embed", "hidden", "rnn_layers", "dim", "heads", "ff_dim", "layers", "beam_size", "pad_multiple"):
      _validate.positive_int(name, getattr(self, name))
    cli.at_least("vocab_size", self.vocab_size, 16)
    cli.at_least("max_tokens", self.max_tokens, 4)
    cli.at_least("valid_sentences", self.valid_sentences, 1)
    cli.at_least("decode_batch", self.decode_batch, 1)
    if self.dim % (2 * self.heads):
      raise ValueError(f"dim ({self.dim}) must be a multiple of 2 x heads ({2 * self.heads})")
    _validate.probability("dropout", self.dropout)
    _validate.finite_number("transformer_learning_rate", self.transformer_learning_rate, low=0.0)
    _validate.finite_number("length_penalty", self.length_penalty, low=0.0)
    cli.check_seeds(self.seeds)
    return self


CONFIGS = {
  "default": ("vocabulary 2000, RNNs 128 wide, Transformer 128 x 3 + 3 layers, 1000 steps of 64 verses", Config()),
  "smoke": (
    "tiny, on the 80-verse fixture",
    Config(
      vocab_size=120,
      max_tokens=96,
      pad_multiple=16,
      embed=8,
      hidden=8,
      rnn_layers=1,
      dim=8,
      heads=2,
      ff_dim=16,
      layers=1,
      train=dataclasses.replace(Config().train, steps=4, batch_size=8, warmup_steps=1, log_every=2, eval_every=2),
      beam_size=2,
      valid_sentences=4,
      decode_batch=8,
      seeds=(0,),
      corpus=str(report.REPO / "tests" / "fixtures" / "bible"),
      workdir="",
      out="/tmp/seqjax-smoke",
    ),
  ),
  "large": (
    "for an accelerator: vocabulary 8000, Bahdanau's 1000-wide RNNs, the 2017 base Transformer, 3 seeds",
    Config(
      vocab_size=8000,
      max_tokens=256,
      embed=620,
      hidden=1000,
      rnn_layers=4,
      dim=512,
      heads=8,
      ff_dim=2048,
      layers=6,
      dropout=0.1,
      train=dataclasses.replace(
        Config().train, steps=30000, batch_size=64, learning_rate=1e-3, warmup_steps=4000, eval_every=2000
      ),
      beam_size=10,
      valid_sentences=317,
      decode_batch=128,
      seeds=(0, 1, 2),
      workdir="runs/translation-large",
      out=str(report.LARGE),
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
  valid: list  # (source ids, reference text) of the validation verses used for the curve
  test: list[TestVerse]  # every test verse
  overlap: dict  # what the test split shares with training


def load_corpus(config: Config) -> Corpus:
  rows = {split: bible.load(split, config.corpus or None) for split in bible.SPLITS}
  subwords = Subwords([text for _, en, es in rows["train"] for text in (en, es)], vocab_size=config.vocab_size)
  encoded = [(subwords.encode(en), subwords.encode(es)) for _, en, es in rows["train"]]
  fits = lambda source, target: max(len(source), len(target)) + 1 <= config.max_tokens  # noqa: E731  (EOS / BOS)
  train = [pair for pair in encoded if fits(*pair)]
  train_english = {en for _, en, _ in rows["train"]}
  train_references = {reference for reference, _, _ in rows["train"]}
  overlap = {
    "test verses whose reference is a training verse": sum(r in train_references for r, _, _ in rows["test"]),
    "test verses whose English is a training verse's English": sum(en in train_english for _, en, _ in rows["test"]),
  }
  return Corpus(
    subwords,
    train,
    len(encoded) - len(train),
    [(subwords.encode(en), es) for _, en, es in rows["valid"][: config.valid_sentences]],
    [TestVerse(subwords.encode(en), es, len(en.split()), reference) for reference, en, es in rows["test"]],
    overlap,
  )


def epoch_batches(train: list, config: Config, seed: int, epoch: int) -> list[np.ndarray]:
  """Index batches of similar lengths for one epoch (full batches only), in an order drawn from (seed, epoch)."""
  lengths = [max(len(s), len(t)) for s, t in train]
  batches = bucketed_batches(lengths, config.train.batch_size, seed=seed * 100_003 + epoch)
  return [b for b in batches if len(b) == config.train.batch_size]


def padded(length: int, multiple: int) -> int:
  return -(-length // multiple) * multiple


def make_batch_fn(train: list, config: Config, seed: int):
  """fit's batch_fn: global batch `step` depends on (seed, step) alone (a resumed run sees the same)."""
  cache = {0: epoch_batches(train, config, seed, 0)}  # one epoch's batches at a time
  per_epoch = len(cache[0])
  if per_epoch == 0:
    raise ValueError(f"{len(train)} training pairs do not fill one batch of {config.train.batch_size}")

  def batch_fn(step: int, rows: slice) -> dict:
    epoch, index = divmod(step, per_epoch)
    if epoch not in cache:
      cache.clear()
      cache[epoch] = epoch_batches(train, config, seed, epoch)
    pairs = [train[i] for i in cache[epoch][index]]
    length = padded(max(max(len(s), len(t) + 1) for s, t in pairs), config.pad_multiple)
    batch = seq2seq_batch(pairs, source_length=length, target_length=length)
    return {k: v[rows] for k, v in batch.items()}

  return batch_fn


# ---------------------------------------------------------------------------------------- models


def build(name: str, vocab: int, config: Config, seed: int) -> nnx.Module:
  rngs = nnx.Rngs(seed)
  if name == TRANSFORMER:
    transformer = EncoderDecoderConfig(
      vocab_size=vocab,
      dim=config.dim,
      num_heads=config.heads,
      ff_dim=config.ff_dim,
      num_encoder_layers=config.layers,
      num_decoder_layers=config.layers,
      max_length=2 * config.max_tokens,  # decoding may run to twice the longest source
      dropout_rate=config.dropout,
    )
    return EncoderDecoder(transformer, rngs=rngs)
  options = {
    FIXED: {"attention": "none", "reverse_source": True, "num_layers": config.rnn_layers},
    BAHDANAU: {"attention": "bahdanau", "bidirectional_encoder": True},
    LUONG: {"attention": "luong", "score": "general", "input_feeding": True, "num_layers": config.rnn_layers},
  }[name]
  return Seq2Seq(
    Seq2SeqConfig(vocab, vocab, embed_dim=config.embed, hidden_features=config.hidden, **options), rngs=rngs
  )


# -------------------------------------------------------------------------------------- decoding


def translate(model, sources: list, config: Config, *, beam: bool) -> list[list[int]]:
  """Token ids of each source's translation, decoded `decode_batch` at a time at one padded shape
  (a short last chunk is filled with copies of its first source, then dropped)."""
  length = padded(max(len(s) for s in sources), config.pad_multiple)
  new_tokens = min(2 * length, model.config.max_length - 1) if isinstance(model, EncoderDecoder) else 2 * length
  out = []
  for start in range(0, len(sources), config.decode_batch):
    chunk = sources[start : start + config.decode_batch]
    filled = chunk + [chunk[0]] * (config.decode_batch - len(chunk))
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
    out += [[int(t) for t in row] for row in np.asarray(tokens)[: len(chunk)]]
  return out


def valid_bleu(corpus: Corpus, config: Config):
  sources = [s for s, _ in corpus.valid]
  references = [r for _, r in corpus.valid]

  def evaluate(model) -> dict:
    hypotheses = [corpus.subwords.decode(t) for t in translate(model, sources, config, beam=False)]
    return {"valid_bleu": corpus_bleu(hypotheses, references)}

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


# -------------------------------------------------------------------------------------- one run


def run_one(name: str, seed: int, corpus: Corpus, config: Config, workdir: Path, example: int) -> dict:
  # a checkpoint at every evaluation (unless the config sets its own): a killed run loses at most that much
  train = dataclasses.replace(
    config.train,
    seed=seed,
    save_every=config.train.save_every or config.train.eval_every,
    learning_rate=config.transformer_learning_rate if name == TRANSFORMER else config.train.learning_rate,
  )
  model = build(name, len(corpus.subwords), config, seed)
  run = {"model": name, "config": dataclasses.asdict(config), "seed": seed}
  started = time.perf_counter()
  result = fit(
    model,
    teacher_forced_loss,
    make_batch_fn(corpus.train, config, seed),
    train,
    workdir=workdir,
    run_config=run,
    overwrite=True,
    evaluate=valid_bleu(corpus, config),
  )
  model = result.model  # decoding passes no dropout key: no dropout
  decode_started = time.perf_counter()
  tokens = translate(model, [verse.source for verse in corpus.test], config, beam=True)
  hypotheses = [corpus.subwords.decode(t) for t in tokens]
  references = [verse.spanish for verse in corpus.test]
  words = [verse.words for verse in corpus.test]
  kept = tokens[example][: tokens[example].index(EOS)] if EOS in tokens[example] else tokens[example]
  return {
    "model": name,
    "seed": seed,
    "parameters": count_params(model),
    "final_train_loss": result.history[-1]["loss"],
    "valid_bleu": [(h["step"], h["valid_bleu"]) for h in result.history if "valid_bleu" in h],
    "train_seconds": result.history[-1]["train_s"],
    "compile_seconds": result.compile_seconds,
    "decode_seconds": time.perf_counter() - decode_started,
    "seconds": time.perf_counter() - started,
    "bleu": corpus_bleu(hypotheses, references),
    "chrf": corpus_chrf(hypotheses, references),
    "buckets": bleu_by_length(hypotheses, references, words, EDGES),
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


def table(runs: list[dict], names: list[str]) -> list[dict]:
  rows = []
  for name in names:
    mine = [r for r in runs if r["model"] == name]
    row = {"model": name, "parameters": f"{mine[0]['parameters']:,}"}
    for index, bucket in enumerate(mine[0]["buckets"]):
      bleus = [r["buckets"][index]["bleu"] for r in mine]
      chrfs = [r["buckets"][index]["chrf"] for r in mine]
      bleu = "n/a" if None in bleus else report.spread(bleus, ".1f")
      row[f"{bucket['lengths']} words ({bucket['sentences']})"] = f"{bleu} / {np.mean(chrfs):.1f}"
    row["all: BLEU"] = report.spread([r["bleu"] for r in mine], ".1f")
    row["all: chrF"] = report.spread([r["chrf"] for r in mine], ".1f")
    row["train s"] = report.spread([r["train_seconds"] for r in mine], ".0f")
    rows.append(row)
  seed_row = dict.fromkeys(rows[0], "") | {"model": "the seed (an RNN encoder-decoder, BLEU)"}
  for bucket in runs[0]["buckets"]:
    seed_row[f"{bucket['lengths']} words ({bucket['sentences']})"] = SEED_TABLE.get(bucket["lengths"], "")
  rows.append(seed_row)
  return rows


def draw_buckets(runs: list[dict], names: list[str], config: Config) -> Path:
  fig, (bleu_ax, chrf_ax) = figures.figure(12, 4.5, columns=2)
  labels = [b["lengths"] for b in runs[0]["buckets"]]
  x = np.arange(len(labels))
  for name in names:
    mine = [r for r in runs if r["model"] == name]
    for ax, metric in ((bleu_ax, "bleu"), (chrf_ax, "chrf")):
      values = np.array([[np.nan if b[metric] is None else b[metric] for b in r["buckets"]] for r in mine])
      (line,) = ax.plot(x, values.mean(0), marker="o", label=name if ax is bleu_ax else None)
      ax.fill_between(x, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
  counts = [b["sentences"] for b in runs[0]["buckets"]]
  for ax, label in ((bleu_ax, "BLEU (sacrebleu)"), (chrf_ax, "chrF (sacrebleu)")):
    ax.set_xticks(x, [f"{lab}\n({n} verses)" for lab, n in zip(labels, counts, strict=True)])
    ax.set_xlabel("source verse length (English words)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
  bleu_ax.legend(fontsize=8)
  fig.suptitle(
    "EN->ES translation quality against source length on held-out Bible verses\n"
    f"(beam {config.beam_size}; mean and min-max over seeds {list(config.seeds)}; same vocabulary, batches and steps)",
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
  source = [corpus.subwords.processor.id_to_piece(int(i)) for i in corpus.test[example].source]
  columns = min(3, len(panels))
  rows = -(-len(panels) // columns)
  fig, axes = figures.figure(5.5 * columns, 5.0 * rows, columns=columns, rows=rows)
  axes = np.atleast_1d(axes).ravel()
  for ax, (title, weights, target) in zip(axes, panels, strict=False):
    shown = weights[: len(target) + 1]  # the steps that produced the translation and its EOS
    image = ax.imshow(shown, cmap="viridis", aspect="auto", vmin=0.0, vmax=float(shown.max()))  # each its own scale
    ax.set_xticks(range(len(source)), source, rotation=90, fontsize=6)
    pieces = [corpus.subwords.processor.id_to_piece(int(i)) for i in target] + ["</s>"]
    ax.set_yticks(range(len(pieces)), pieces, fontsize=6)
    ax.set_xlabel("source subword (English)")
    ax.set_ylabel("output subword (the model's Spanish)")
    ax.set_title(title, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.04, label="attention weight (0 to the panel's largest)")
  for ax in axes[len(panels) :]:
    ax.axis("off")
  fig.suptitle(
    f"Where each model looks while translating test verse {corpus.test[example].verse} (seed {config.seeds[0]})",
    fontsize=10,
  )
  return figures.save(fig, config.out, "translation_attention")


OWN_FIELDS = {  # the Config fields only one family's runs read
  "RNN": ("embed", "hidden", "rnn_layers"),
  TRANSFORMER: ("dim", "heads", "ff_dim", "layers", "dropout", "transformer_learning_rate"),
}


def journal(config: Config, family: str) -> Journal:
  """The journal of one family's runs: a run (model, seed) depends on every field but the
  selection fields and the other family's own, so a change to the Transformer's width keeps the
  RNN runs (both families' lines share one file, told apart by their fingerprints)."""
  other = {f for fam, fields in OWN_FIELDS.items() if fam != family for f in fields}
  ignored = {"models", "seeds", "workdir", "out"} | other
  return Journal("translation", config, fields=tuple(f for f in Config.__dataclass_fields__ if f not in ignored))


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  names = list(config.models or MODELS)
  started = time.perf_counter()
  corpus = load_corpus(config)
  example = pick_example(corpus)
  print(
    f"corpus: {len(corpus.train):,} training pairs ({corpus.left_out} longer than {config.max_tokens} subwords left "
    f"out), {len(corpus.test)} test verses, vocabulary {len(corpus.subwords)}; overlap {corpus.overlap}",
    flush=True,
  )
  journals = {family: journal(config, family) for family in OWN_FIELDS}
  runs_dir = Path(config.workdir or Path(config.out) / "translation-runs")
  runs = []
  for seed in config.seeds:
    for name in names:
      workdir = runs_dir / f"{name.split(' ')[0].lower()}-seed{seed}"
      record = journals[TRANSFORMER if name == TRANSFORMER else "RNN"].run(
        f"{name}|{seed}", lambda n=name, s=seed, w=workdir: run_one(n, s, corpus, config, w, example)
      )
      runs.append(record)
      print(f"seed {seed} {name}: BLEU {record['bleu']:.2f}, chrF {record['chrf']:.1f}", flush=True)
  rows = table(runs, names)
  paths = [draw_buckets(runs, names, config), draw_attention(runs, names, corpus, example, config)]
  counts = {b["lengths"]: b["sentences"] for b in runs[0]["buckets"]}
  setup = (
    f"{len(corpus.train):,} training verse pairs ({corpus.left_out} longer than {config.max_tokens} subwords left "
    f"out), {len(corpus.test)} test verses {counts}; overlap with training: {corpus.overlap}. Vocabulary: "
    f"{len(corpus.subwords)} sentencepiece subwords shared by both languages. Each model: {config.train.steps} "
    f"steps of {config.train.batch_size} verse pairs (the same batches per seed), Adam lr "
    f"{config.train.learning_rate:g} (the Transformer {config.transformer_learning_rate:g}) "
    f"{config.train.schedule}, clip {config.train.clip_norm}; seeds "
    f"{list(config.seeds)} (init and batch order). Beam {config.beam_size}, length penalty {config.length_penalty}."
  )
  sections = [
    (
      "BLEU / chrF by source length (English words; verses per bucket in brackets): BLEU mean [lowest-highest "
      "seed] / chrF mean",
      report.markdown_table(rows),
    ),
    ("Setup", setup),
    ("Figures", "\n\n".join(f"![{p.stem}]({p.name})" for p in paths)),
  ]
  data = {
    "runs": runs,
    "table": rows,
    "test_verses": counts,
    "overlap": corpus.overlap,
    "train_pairs": len(corpus.train),
    "left_out": corpus.left_out,
    "example": corpus.test[example].verse,
    "seeds": list(config.seeds),
    "seconds": time.perf_counter() - started,
    "runs_resumed_from_journal": sum(j.resumed for j in journals.values()),
  }
  title = "EN->ES translation on the Bible: quality against source length"
  report.write("translation", title, sections, data, config=config, script=__spec__.name, argv=argv)
  print(f"trained models (fit workdirs, one per model and seed): {runs_dir}")


if __name__ == "__main__":
  main()
