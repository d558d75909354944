"""Attention forward+backward: seqjax's dense core and blockwise attention against
jax.nn.dot_product_attention and torch's scaled_dot_product_attention, with compiled temporary
memory (XLA's memory_analysis) against T.

B=4, 8 heads of 64, causal, float32, T in {256, 1024, 4096} by default. On a GPU, torch runs on
CUDA, and in bfloat16 (the `gpu` config) jax.nn's cuDNN flash attention joins the cases.

Also: what the backend's matmul kernels alone take of blockwise attention's work. Each key block
a query block visits costs seven block matmuls over the B*N heads, three shaped like the scores
([bq, D] x [D, bk]: Q K^T, its recompute and dO V^T in the backward) and four like the values
([bq, bk] x [bk, D]: P V, dV, dQ, dK). Both shapes are timed as calls of their own in JAX and in
torch; (visited block pairs) x (3 score + 4 value matmul times) estimates the matmul time with no
softmax at all (each call's dispatch included: negligible at the default shapes, dominant at smoke's).

Commands:
    python -m benchmarks.attention default    # several minutes on 2 CPU cores (T=4096 dense is 2 GB of scores)
    python -m benchmarks.attention gpu        # the same shapes in bfloat16
    python -m benchmarks.attention smoke
"""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from harness import cli, report, timing
from seqjax.attention import dot_product_attention
from seqjax.attention.blockwise import blockwise_attention

RESULTS = report.RESULTS / "bench"

# config fields renamed since a committed results file was written (harness.renames): old -> today's
RENAMED = {"heads": "num_heads"}


@dataclasses.dataclass(frozen=True)
class Config:
  batch: int = 4
  num_heads: int = 8
  head_dim: int = 64
  times: tuple[int, ...] = (256, 1024, 4096)
  blocks: tuple[int, ...] = (128, 512)  # blockwise block sizes (query and key), each a case
  dtype: str = "float32"
  runs: int = 5
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("B=4, 8x64 heads, T=256/1024/4096", Config()),
  "gpu": ("as default, in bfloat16", Config(dtype="bfloat16")),
  "smoke": (
    "tiny",
    Config(batch=1, num_heads=2, head_dim=8, times=(16, 32), blocks=(8,), runs=1, out="/tmp/seqjax-smoke"),
  ),
}


def fwd_bwd(attend):
  """q, k, v -> gradients of sum(attention) with respect to all three."""
  return jax.grad(lambda q, k, v: jnp.sum(attend(q, k, v)), argnums=(0, 1, 2))


def torch_case(q: np.ndarray, dtype: str, device: str):
  import torch
  import torch.nn.functional as F

  torch.set_num_threads(os.cpu_count() or 1)
  q = torch.from_numpy(np.swapaxes(q, 1, 2).copy()).to(device, getattr(torch, dtype))  # [B, N, T, D]
  tensors = [q.clone().requires_grad_() for _ in range(3)]

  def run():
    for t in tensors:
      t.grad = None
    F.scaled_dot_product_attention(*tensors, is_causal=True).sum().backward()

  return run


def block_matmuls(config: Config, block: int, torch_device: str | None) -> dict[str, dict]:
  """The two block matmul shapes of blockwise attention, batched over the B*N heads, timed."""
  BN, D = config.batch * config.num_heads, config.head_dim
  runs = 5 * config.runs
  return {
    "scores": timing.time_matmul((BN, block, D), (BN, D, block), torch_device, runs=runs),
    "values": timing.time_matmul((BN, block, block), (BN, block, D), torch_device, runs=runs),
  }


def matmuls_alone_rows(config: Config, data: list[dict], torch_device: str | None) -> list[dict]:
  """Per block size and T: what blockwise attention's block matmuls alone take (see the module
  docstring) with JAX's and torch's kernels, next to the measured times of the whole."""
  rows, timed = [], {}
  measured = {(d["T"], d["implementation"]): d["median_s"] for d in data}
  for block in config.blocks:
    for T in config.times:
      b = min(block, T)
      if b not in timed:
        timed[b] = block_matmuls(config, b, torch_device)
      scores, values = timed[b]["scores"], timed[b]["values"]
      per_axis = -(-T // b)
      pairs = per_axis * (per_axis + 1) // 2  # causal: the diagonal blocks and those below
      row = {
        "T": T,
        "block": b,
        "block pairs per head": pairs,
        "JAX GFLOP/s (scores / values shape)": f"{scores['flops'] / scores['jax_s'] / 1e9:.0f} / "
        f"{values['flops'] / values['jax_s'] / 1e9:.0f}",
        "JAX matmuls alone ms": f"{1e3 * pairs * (3 * scores['jax_s'] + 4 * values['jax_s']):.1f}",
        "seqjax blockwise ms": f"{1e3 * measured[T, f'seqjax blockwise (block {block})']:.1f}",
      }
      if torch_device:
        row |= {
          "torch GFLOP/s (scores / values shape)": f"{scores['flops'] / scores['torch_s'] / 1e9:.0f} / "
          f"{values['flops'] / values['torch_s'] / 1e9:.0f}",
          "torch matmuls alone ms": f"{1e3 * pairs * (3 * scores['torch_s'] + 4 * values['torch_s']):.1f}",
          "torch SDPA ms": f"{1e3 * measured[T, 'torch SDPA']:.1f}",
        }
      rows.append(row)
  return rows


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  rows, data = [], []
  torch_device = timing.torch_device()
  cudnn = jax.default_backend() == "gpu" and config.dtype in ("bfloat16", "float16")
  for T in config.times:
    shape = (config.batch, T, config.num_heads, config.head_dim)
    q = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    args = (jnp.asarray(q, config.dtype),) * 3
    cases = {
      "seqjax dense (vmapped core)": fwd_bwd(lambda q, k, v: dot_product_attention(q, k, v, is_causal=True)),
      **{
        f"seqjax blockwise (block {block})": fwd_bwd(
          lambda q, k, v, block=block: blockwise_attention(q, k, v, is_causal=True, block_q=block, block_k=block)
        )
        for block in config.blocks
      },
      "jax.nn.dot_product_attention": fwd_bwd(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True)),
    }
    if cudnn:
      cases["jax.nn cuDNN"] = fwd_bwd(
        lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="cudnn")
      )
    results = {name: timing.time_jax(fn, *args, runs=config.runs) for name, fn in cases.items()}
    if torch_device:
      results["torch SDPA"] = timing.time_torch(torch_case(q, config.dtype, torch_device), runs=config.runs)
    for name, r in results.items():
      row = {
        "T": T,
        "implementation": name,
        "ms, median [fastest-slowest]": timing.spread(r),
        "compile s": f"{r['compile_s']:.2f}",
        "vs torch": timing.ratio(r, results.get("torch SDPA")),
        "vs jax.nn": timing.ratio(r, results["jax.nn.dot_product_attention"]),
        "temp MiB": "n/a" if r["temp_bytes"] is None else f"{r['temp_bytes'] / 2**20:.1f}",
      }
      rows.append(row)
      data.append({**row, **r})
  growth = []
  for name in cases:
    temps = [d["temp_bytes"] for d in data if d["implementation"] == name]
    steps = zip(config.times, config.times[1:], temps, temps[1:], strict=False)
    growth.append({"implementation": name, **{f"T {a} -> {b}": f"{m_b / m_a:.2f}x" for a, b, m_a, m_b in steps}})
  matmuls_alone = matmuls_alone_rows(config, data, torch_device)
  report.write(
    "attention",
    f"Attention speed and memory, {timing.device_name()}",
    [
      (
        f"forward+backward, causal, B={config.batch}, {config.num_heads} heads of {config.head_dim}, {config.dtype}, "
        f"median of {config.runs} runs after a warm-up",
        report.markdown_table(rows),
      ),
      ("Growth of compiled temporary memory with T", report.markdown_table(growth)),
      (
        f"Blockwise attention's block matmuls alone: 7 per visited block pair, median of {5 * config.runs} "
        "calls of each shape over all heads (no softmax)",
        report.markdown_table(matmuls_alone),
      ),
    ],
    {"device": timing.device_name(), "rows": data, "matmuls_alone": matmuls_alone},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
