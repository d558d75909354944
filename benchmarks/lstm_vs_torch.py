"""seqjax's LSTM language model against PyTorch's on charlm's batches: which initialization, part
by part, explains the gap (issue #30: torch.nn.LSTM 2.57 bits/char at torch's default init,
seqjax's LSTM 2.85-2.94, on the same text and schedule).

Both models are charlm's LSTM: an embedding, two LSTM layers and a linear readout, of one width
(244: ~1M parameters). Both train on charlm's batches (the same windows in the same order, drawn
from (seed, step) by `char_text.window_sampler`), with its schedule and optimizer (AdamW, warmup
+ cosine, clip 1), and are scored on charlm's held-out windows in bits per character. seqjax
trains through `fit`, as charlm does; torch through a plain loop doing the same: AdamW at the
same per-step learning rate (b1 0.9, b2 0.999, eps 1e-8, decoupled decay of every parameter),
gradients clipped to global norm 1, on one thread (`torch_threads`).

The initial weights have four parts, each drawn by one library's own initialization: seqjax's
(charlm's `RNNLanguageModel` as measured, nnx.Rngs(seed): embedding N(0, 1/D), LSTM input kernels Xavier
uniform and recurrent kernels orthogonal gate by gate, LSTM biases 0 with forget gate 1, readout
LeCun normal with bias 0) or torch's (its modules' defaults after torch.manual_seed(seed):
embedding N(0, 1), every LSTM weight U(+-1/sqrt(H)), two bias vectors b_ih and b_hh each
U(+-1/sqrt(H)), readout weight and bias U(+-1/sqrt(H))). Each framework trains from its own
init, from its own with one part taken from the other library, and from the other's whole init;
the two own inits also at other peak learning rates (`learning_rates`).
torch's LSTM trains two bias vectors whose sum is the one seqjax has (so Adam moves the sum up to
twice as fast): "one bias vector" folds b_hh into b_ih and freezes it at 0, which makes torch's
model seqjax's exactly.

Commands:
    python -m benchmarks.lstm_vs_torch default   # 17 runs of charlm's 400 steps, 5-7 minutes each on 2 busy cores
    python -m benchmarks.lstm_vs_torch smoke
Not part of `python -m benchmarks` (a training study, not a timing); needs torch and the corpus
(`python -m seqjax.data.bible prepare`).
"""

import dataclasses
import math
import tempfile
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.nnx.nn.linear import default_embed_init

from experiments import charlm
from harness import budget, cli, report
from harness.journal import Journal
from seqjax import zoo
from seqjax.data import bible_text, char_text
from seqjax.interop import rnn_from_torch, rnn_to_torch
from seqjax.recurrent import StackedRNN
from seqjax.train import TrainConfig

RESULTS = report.RESULTS / "bench"
PARTS = {  # part -> the prefixes of its names in torch's state_dict
  "embedding": ("embed.",),
  "LSTM weights": ("lstm.weight_",),
  "LSTM biases": ("lstm.bias_",),
  "readout": ("readout.",),
}
LIBRARIES = ("seqjax", "torch")


def variants() -> dict[str, tuple[str, dict[str, str], bool]]:
  """name -> (the framework that trains, part -> the library whose init it takes, one bias vector);
  the two own inits and the two whole swaps first, then the swaps of one part."""
  own = {library: dict.fromkeys(PARTS, library) for library in LIBRARIES}
  table = {
    "torch, torch init": ("torch", own["torch"], False),
    "seqjax, seqjax init": ("seqjax", own["seqjax"], False),
    "seqjax, torch init": ("seqjax", own["torch"], False),
    "torch, seqjax init, one bias vector": ("torch", own["seqjax"], True),
    "torch, seqjax init": ("torch", own["seqjax"], False),
  }
  for framework, other in (("seqjax", "torch"), ("torch", "seqjax")):
    for part in PARTS:
      sources = {**own[framework], part: other}
      table[f"{framework}, {framework} init but {part} from {other}"] = (framework, sources, False)
  return table


VARIANTS = variants()
OWN_INITS = ("torch, torch init", "seqjax, seqjax init")  # also trained at `learning_rates`
HEADLINE = (*OWN_INITS, "seqjax, seqjax init but embedding from torch", "torch, torch init but embedding from seqjax")


TRAIN = dataclasses.replace(charlm.TRAIN, weight_decay_mask="all")  # charlm's as measured: every parameter decays


@dataclasses.dataclass(frozen=True)
class Config:
  variants: tuple[str, ...] = ()  # () = all of VARIANTS
  width: int = 244  # charlm's LSTM width at its default ~1M parameters
  context: int = 128
  train: TrainConfig = TRAIN
  valid_windows: int = 128
  valid_every: int = 10
  seeds: tuple[int, ...] = (0,)
  learning_rates: tuple[float, ...] = (4e-3, 8e-3)  # other peak rates for OWN_INITS (the learning rate candidate)
  more_seeds: tuple[int, ...] = (1,)  # further seeds for the HEADLINE variants, at train.learning_rate
  torch_threads: int = 1  # on a shared 2-core machine torch's 2 threads spun ~13x slower than 1
  corpus: str = ""  # the prepared corpus folder ("": seqjax.data.bible's default)
  out: str = str(RESULTS)

  def check(self) -> "Config":
    cli.known("variants", self.variants, VARIANTS)
    cli.at_least("width", self.width, 1)
    cli.at_least("context", self.context, 2)
    cli.at_least("valid_windows", self.valid_windows, 1)
    cli.at_least("valid_every", self.valid_every, 2)
    cli.check_seeds(self.seeds)
    if self.more_seeds:
      cli.check_seeds(self.more_seeds)
    cli.at_least("torch_threads", self.torch_threads, 1)
    if any(isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r < math.inf for r in self.learning_rates):
      raise ValueError(f"learning_rates must be finite numbers > 0, got {self.learning_rates!r}")
    train = self.train.check()
    plain = dict(optimizer="adamw", clip_value=None, accumulate_steps=1, precision="fp32", weight_decay_mask="all")
    differs = {k: getattr(train, k) for k, v in plain.items() if getattr(train, k) != v}
    if differs:
      raise ValueError(f"train: the torch loop here implements only {plain}; got {differs}")
    return self


# ------------------------------------------------------------------------------- the two models


def torch_lm(vocab: int, width: int, layers: int, seed: int):
  """charlm's LSTM in torch, at torch's default init drawn after torch.manual_seed(seed)."""
  import torch

  torch.manual_seed(seed)
  return torch.nn.ModuleDict(
    {
      "embed": torch.nn.Embedding(vocab, width),
      "lstm": torch.nn.LSTM(width, width, layers, batch_first=True),
      "readout": torch.nn.Linear(width, vocab),
    }
  )


def torch_logits(lm, tokens):
  """tokens [B, T] (torch int64) -> logits [B, T, V]."""
  return lm["readout"](lm["lstm"](lm["embed"](tokens))[0])


def seqjax_lm(vocab: int, width: int, context: int, seed: int):
  """charlm's LSTM as charlm built it when this was measured: its embedding drawn by flax's default,
  N(0, 1/D) (`RNNLanguageModel` has drawn N(0, 1) since, because of this study)."""
  spec, options = charlm.architecture("LSTM")
  return zoo.build(
    spec, width=width, vocab=vocab, context=context, rngs=nnx.Rngs(seed), embedding_init=default_embed_init, **options
  )


def lstm_stack(model) -> StackedRNN:
  """The model's StackedRNN (found by type: the attribute holding it is the model's business)."""
  (stack,) = [module for _, module in nnx.iter_graph(model) if isinstance(module, StackedRNN)]
  return stack


def seqjax_weights(model) -> dict[str, np.ndarray]:
  """A seqjax LSTM LM's parameters under the names (and layouts) of torch_lm's state_dict."""
  return {
    "embed.weight": np.array(model.embed.embedding[...]),
    **{f"lstm.{name}": value for name, value in rnn_to_torch(lstm_stack(model)).items()},
    "readout.weight": np.array(model.readout.kernel[...]).T.copy(),
    "readout.bias": np.array(model.readout.bias[...]),
  }


def part_of(name: str) -> str:
  (part,) = [part for part, prefixes in PARTS.items() if name.startswith(prefixes)]
  return part


def initial_weights(sources: dict[str, str], vocab: int, width: int, context: int, seed: int) -> dict:
  """torch_lm's state_dict (numpy), each part from the library `sources` names for it."""
  torch_state = torch_lm(vocab, width, charlm.RNN_LAYERS, seed).state_dict()
  drawn = {
    "seqjax": seqjax_weights(seqjax_lm(vocab, width, context, seed)),
    "torch": {name: t.detach().numpy().copy() for name, t in torch_state.items()},
  }
  if drawn["seqjax"].keys() != drawn["torch"].keys():
    raise ValueError(f"the two models' parameters differ: {sorted(drawn['seqjax'])} != {sorted(drawn['torch'])}")
  return {name: drawn[sources[part_of(name)]][name] for name in drawn["torch"]}


def load_seqjax(weights: dict, vocab: int, width: int, context: int):
  model = seqjax_lm(vocab, width, context, 0)
  model.embed.embedding[...] = jnp.asarray(weights["embed.weight"])
  lstm = {name.removeprefix("lstm."): value for name, value in weights.items() if name.startswith("lstm.")}
  nnx.update(lstm_stack(model), nnx.state(rnn_from_torch(lstm, kind="lstm"), nnx.Param))  # b_ih + b_hh -> one bias
  model.readout.kernel[...] = jnp.asarray(weights["readout.weight"].T)
  model.readout.bias[...] = jnp.asarray(weights["readout.bias"])
  return model


def load_torch(weights: dict, vocab: int, width: int, one_bias: bool):
  import torch

  lm = torch_lm(vocab, width, charlm.RNN_LAYERS, 0)
  weights = dict(weights)
  if one_bias:  # b_ih holds the sum, b_hh stays 0 and untrained: seqjax's one bias per gate
    for name in [n for n in weights if n.startswith("lstm.bias_hh")]:
      ih = name.replace("bias_hh", "bias_ih")
      weights[ih], weights[name] = weights[ih] + weights[name], np.zeros_like(weights[name])
  lm.load_state_dict({name: torch.from_numpy(value) for name, value in weights.items()})
  if one_bias:
    for name, parameter in lm.named_parameters():
      parameter.requires_grad_(not name.startswith("lstm.bias_hh"))
  return lm


# ------------------------------------------------------------------------------------ training


def train_torch(lm, train_ids: np.ndarray, windows: np.ndarray, train: TrainConfig, context: int, threads: int) -> dict:
  """charlm's training in torch: AdamW at seqjax's per-step learning rate, clip, evaluations at
  fit's steps. -> {"curve": [(step, training seconds, valid bits/char, train loss nats)], ...}."""
  import torch
  import torch.nn.functional as F

  torch.set_num_threads(threads)
  rates = budget.step_learning_rates(train)
  batches = char_text.window_sampler(train_ids, context, train.batch_size, train.seed)
  trained = [p for p in lm.parameters() if p.requires_grad]
  adamw = torch.optim.AdamW(trained, lr=0.0, betas=(0.9, 0.999), eps=1e-8, weight_decay=train.weight_decay)
  held_out = torch.from_numpy(windows).long()

  def valid_bpc() -> float:
    with torch.no_grad():
      logits = torch_logits(lm, held_out[:, :-1])
      return F.cross_entropy(logits.flatten(0, 1), held_out[:, 1:].flatten()).item() / math.log(2)

  curve, seconds = [], 0.0
  for step in range(train.steps):
    tokens = torch.from_numpy(batches(step)).long()  # [B, T + 1]
    started = time.perf_counter()
    for group in adamw.param_groups:
      group["lr"] = float(rates[step])
    loss = F.cross_entropy(torch_logits(lm, tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten())
    adamw.zero_grad()
    loss.backward()
    if train.clip_norm is not None:
      torch.nn.utils.clip_grad_norm_(trained, train.clip_norm)
    adamw.step()
    seconds += (time.perf_counter() - started) if step else 0.0  # as fit: the first step is not timed
    done = step + 1
    if done == train.steps or (train.eval_every and done % train.eval_every == 0):
      curve.append((done, seconds, valid_bpc(), loss.item()))
      print(f"  torch step {done}/{train.steps}: valid {curve[-1][2]:.3f} bits/char, {seconds:.0f} s", flush=True)
  return {"curve": curve, "train_seconds": seconds}


def train_seqjax(model, name, train_ids, windows, train: TrainConfig, context: int, width: int) -> dict:
  """Through charlm's own training (`fit`, its batches and evaluation); the workdir is thrown away."""
  with tempfile.TemporaryDirectory(prefix="lstm-vs-torch-") as workdir:
    run = {"model": name, "width": width, "context": context, "train": dataclasses.asdict(train)}
    record = charlm.train_one(name, model, train_ids, windows, train, context, Path(workdir), run)
  return {"curve": record["curve"], "train_seconds": record["train_seconds"]}


def run_variant(name: str, seed: int, learning_rate: float, config: Config, data: tuple) -> dict:
  split, train_ids, windows = data
  framework, sources, one_bias = VARIANTS[name]
  vocab, train = len(split.vocabulary), dataclasses.replace(config.train, seed=seed, learning_rate=learning_rate)
  weights = initial_weights(sources, vocab, config.width, config.context, seed)
  if framework == "torch":
    lm = load_torch(weights, vocab, config.width, one_bias)
    result = train_torch(lm, train_ids, windows, train, config.context, config.torch_threads)
  else:
    model = load_seqjax(weights, vocab, config.width, config.context)
    result = train_seqjax(model, name, train_ids, windows, train, config.context, config.width)
  return {"variant": name, "seed": seed, "learning_rate": learning_rate, "valid_bpc": result["curve"][-1][2], **result}


# --------------------------------------------------------------------------------------- report


def run_plan(config: Config) -> list[tuple[str, int, float]]:
  """(variant, seed, peak learning rate) of every run, in the order they train."""
  names, base = list(config.variants or VARIANTS), config.train.learning_rate
  plan = [(name, seed, base) for seed in config.seeds for name in names]
  plan += [(n, seed, r) for seed in config.seeds for r in config.learning_rates for n in OWN_INITS if n in names]
  more = [seed for seed in config.more_seeds if seed not in config.seeds]
  return plan + [(name, seed, base) for seed in more for name in HEADLINE if name in names]


def table(runs: list[dict]) -> list[dict]:
  """One row per variant and learning rate, over its seeds; against the framework's own init at
  the same rate, seed by seed."""
  rows = []
  for name, rate in dict.fromkeys((r["variant"], r["learning_rate"]) for r in runs):
    framework, sources, one_bias = VARIANTS[name]
    own_init = f"{framework}, {framework} init"
    mine = {r["seed"]: r["valid_bpc"] for r in runs if (r["variant"], r["learning_rate"]) == (name, rate)}
    own = {r["seed"]: r["valid_bpc"] for r in runs if (r["variant"], r["learning_rate"]) == (own_init, rate)}
    paired = [mine[seed] - own[seed] for seed in mine if seed in own]
    rows.append(
      {
        "trained by": framework,
        "peak lr": f"{rate:g}",
        **{f"{part} init": sources[part] for part in PARTS},
        "bias vectors": "1" if framework == "seqjax" or one_bias else "2 (b_ih, b_hh)",
        "seeds": ", ".join(str(seed) for seed in mine),
        "valid bits/char, mean [range]": report.spread(list(mine.values()), ".3f"),
        "against the framework's own init, same seeds": f"{np.mean(paired):+.3f}" if paired else "n/a",
      }
    )
  return rows


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  started = time.perf_counter()
  split = bible_text.split_by_book(bible_text.books(config.corpus or None), config.valid_every)  # charlm's text
  train_ids, valid_ids = (char_text.encode(text, split.vocabulary) for text in (split.train, split.valid))
  windows = char_text.fixed_windows(valid_ids, config.valid_windows, config.context)
  data = (split, train_ids, windows)
  fields = ("width", "context", "train", "valid_windows", "valid_every", "corpus")  # what a run's record depends on
  journal = Journal("lstm_vs_torch", config, fields=fields)
  train, runs = config.train, []
  for name, seed, rate in run_plan(config):
    key = f"{name}|{seed}" + ("" if rate == train.learning_rate else f"|lr {rate:g}")
    record = journal.run(key, lambda name=name, seed=seed, rate=rate: run_variant(name, seed, rate, config, data))
    print(f"seed {seed} {name}, lr {rate:g}: {record['valid_bpc']:.3f} bits/char", flush=True)
    runs.append({**record, "learning_rate": rate})  # the key holds the rate (records journaled before it did not)
  sections = [
    ("Validation bits per character after training", report.markdown_table(table(runs))),
    (
      "Setup",
      f"charlm's LSTM LM (embedding, 2 LSTM layers, readout; width {config.width}) on charlm's text, batches and "
      f"{config.valid_windows} held-out windows of {config.context + 1} characters: {train.steps} steps of "
      f"{train.batch_size} windows, AdamW peak lr {train.learning_rate:g} (the two own inits also at "
      f"{', '.join(f'{r:g}' for r in config.learning_rates) or 'no other'}) {train.schedule} "
      f"(warmup {train.warmup_steps}), "
      f"weight decay {train.weight_decay:g} on every parameter, clip {train.clip_norm}; seeds {list(config.seeds)} "
      f"(and {list(config.more_seeds)} for the variants {list(HEADLINE)}). "
      "Each init part is drawn by the named library's own initialization (the module docstring lists them).",
    ),
  ]
  payload = {
    "runs": runs,
    "variants": {r["variant"]: VARIANTS[r["variant"]] for r in runs},
    "seconds_of_this_start": time.perf_counter() - started,  # runs read back from the journal cost none
    "runs_resumed_from_journal": journal.resumed,
  }
  title = "seqjax's LSTM LM against torch's on charlm's batches, init part by part"
  report.write("lstm_vs_torch", title, sections, payload, config=config, script=__spec__.name, argv=argv)


CONFIGS = {
  "default": ("charlm's default LSTM and schedule, every variant, seed 0", Config()),
  "smoke": (
    "tiny: width 8, context 8, 4 steps, on the test fixture corpus",
    Config(
      variants=("seqjax, torch init", "torch, torch init"),  # both frameworks and loaders, one lr run
      learning_rates=(4e-3,),
      width=8,
      context=8,
      train=dataclasses.replace(TRAIN, steps=4, batch_size=8, warmup_steps=1, log_every=2, eval_every=2),
      valid_windows=4,
      valid_every=2,
      corpus=str(report.REPO / "tests" / "fixtures" / "bible"),
      out="/tmp/seqjax-smoke",
    ),
  ),
}

if __name__ == "__main__":
  main()
