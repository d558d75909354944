"""A GPT train step (forward, backward, Adam update, all jitted): tokens/s and model-FLOPs
utilization against the matmul peak in the compute dtype (float32, or bfloat16 for precision
bf16), measured in the same run on the same device.

Model FLOPs per token follow PaLM (Chowdhery et al. 2022, appendix B): 6 N + 12 L T D, with N the
parameters used in matmuls (the tied embedding counted once, as the output projection; the
learned position table not counted), L layers, T context, D width; causal masking is not
discounted.

Commands:
    python -m benchmarks.gpt default      # D=256, 4 layers, T=256, B=8: a CPU-sized model
    python -m benchmarks.gpt gpu          # GPT-2 small (D=768, 12 layers, T=1024), B=16, bf16
    python -m benchmarks.gpt smoke
"""

import dataclasses

import jax
import numpy as np
from flax import nnx

from harness import cli, report, timing
from seqjax.train import optimizer, token_cross_entropy
from seqjax.train.config import PRECISIONS
from seqjax.train.step import init_state, make_train_step, split_model
from seqjax.transformer import GPT, GPTConfig

RESULTS = report.RESULTS / "bench"


@dataclasses.dataclass(frozen=True)
class Config:
  model: GPTConfig = GPTConfig(
    vocab_size=8192, max_length=256, dim=256, num_heads=4, num_layers=4, ff_dim=1024, dropout_rate=0.0
  )
  batch: int = 8
  precision: str = "fp32"
  runs: int = 5
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("D=256, 4 layers, T=256, B=8", Config()),
  "gpu": (
    "GPT-2 small, T=1024, B=16, bf16",
    Config(
      model=GPTConfig(dropout_rate=0.0, attention_implementation="auto"),  # GPT-2 small; cuDNN attention in bf16
      batch=16,
      precision="bf16",
    ),
  ),
  "smoke": (
    "tiny",
    Config(
      model=GPTConfig(vocab_size=64, max_length=16, dim=16, num_heads=2, num_layers=1, ff_dim=32),
      batch=2,
      runs=1,
      out="/tmp/seqjax-smoke",
    ),
  ),
}


def loss_fn(model, batch, rng):
  tokens = batch["tokens"]
  loss, count = token_cross_entropy(model(tokens[:, :-1]), tokens[:, 1:])
  return loss, {"tokens": count}


def model_flops_per_token(model: GPT, config: GPTConfig) -> float:
  params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
  positions = config.max_length * config.dim if config.position == "learned" else 0
  return 6 * (params - positions) + 12 * config.num_layers * config.max_length * config.dim


def compiled_train_step(m: GPTConfig, batch: int, precision: str):
  """A GPT of config m (seed 0) and its jitted train step on random tokens [batch, max_length + 1],
  compiled -> (model, call: one step, returning when it is done, compile seconds)."""
  model = GPT(m, rngs=nnx.Rngs(0))
  graphdef, params, rest = split_model(model)
  tx = optimizer("adam", 1e-4)
  step = make_train_step(graphdef, rest, loss_fn, tx, compute_dtype=PRECISIONS[precision])
  tokens = np.random.default_rng(0).integers(0, m.vocab_size, (batch, m.max_length + 1)).astype(np.int32)
  batch = {"tokens": tokens}
  call, compile_s = timing.compiled_step_call(step, init_state(params, tx, 0), batch)
  return model, call, compile_s


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  m = config.model
  model, call, compile_s = compiled_train_step(m, config.batch, config.precision)
  peak_dtype = PRECISIONS[config.precision] or "float32"
  peak_size = 4096 if jax.default_backend() == "gpu" else 2048
  peak = timing.matmul_peak(size=peak_size, dtype=peak_dtype)
  result = timing.time_calls(call, runs=config.runs)
  median = result["median_s"]
  tokens_per_step = config.batch * m.max_length
  flops = model_flops_per_token(model, m) * tokens_per_step
  row = {
    "model": f"D={m.dim}, L={m.num_layers}, T={m.max_length}, V={m.vocab_size}, B={config.batch}",
    "precision": config.precision,
    "step ms, median [fastest-slowest]": timing.spread(result),
    "tokens/s": f"{tokens_per_step / median:.0f}",
    "model TFLOP/step": f"{flops / 1e12:.3f}",
    "achieved GFLOP/s": f"{flops / median / 1e9:.1f}",
    "matmul peak GFLOP/s": f"{peak / 1e9:.1f}",
    "MFU": f"{100 * flops / median / peak:.0f}%",
    "compile s": f"{compile_s:.1f}",
  }
  report.write(
    "gpt",
    f"GPT train step, {timing.device_name()}",
    [
      (
        f"median of {config.runs} steps after a warm-up; peak: {peak_dtype} {peak_size}^3 matmul timed in the same run",
        report.markdown_table([row]),
      )
    ],
    {"device": timing.device_name(), "row": row, **result},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
