"""Attention forward+backward: seqjax's dense core and blockwise attention against
jax.nn.dot_product_attention and torch's scaled_dot_product_attention, with compiled temporary
memory (XLA's memory_analysis) against T.

B=4, 8 heads of 64, causal, float32, T in {256, 1024, 4096} by default. On a GPU, torch runs on
CUDA, and in bfloat16 (the `gpu` config) jax.nn's cuDNN flash attention joins the cases.

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

from benchmarks import timing
from experiments import cli, report
from seqjax.attention import dot_product_attention
from seqjax.attention.blockwise import blockwise_attention

RESULTS = report.RESULTS / "bench"


@dataclasses.dataclass(frozen=True)
class Config:
  batch: int = 4
  heads: int = 8
  head_dim: int = 64
  times: tuple[int, ...] = (256, 1024, 4096)
  blocks: tuple[int, ...] = (128, 512)  # blockwise block sizes (query and key), each a case
  dtype: str = "float32"
  runs: int = 5
  out: str = str(RESULTS)


CONFIGS = {
  "default": ("B=4, 8x64 heads, T=256/1024/4096", Config()),
  "gpu": ("as default, in bfloat16", Config(dtype="bfloat16")),
  "smoke": ("tiny", Config(batch=1, heads=2, head_dim=8, times=(16, 32), blocks=(8,), runs=1, out="/tmp/seqjax-smoke")),
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


def main(argv=None):
  config = cli.parse(CONFIGS, argv, description=__doc__.split("\n\n")[0])
  rows, data = [], []
  torch_device = timing.torch_device()
  cudnn = jax.default_backend() == "gpu" and config.dtype in ("bfloat16", "float16")
  for T in config.times:
    q = np.random.default_rng(0).standard_normal((config.batch, T, config.heads, config.head_dim)).astype(np.float32)
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
        "median ms": f"{1e3 * r['median_s']:.1f}",
        "compile s": f"{r['compile_s']:.2f}",
        "vs torch": f"{r['median_s'] / results['torch SDPA']['median_s']:.2f}x" if "torch SDPA" in results else "n/a",
        "vs jax.nn": f"{r['median_s'] / results['jax.nn.dot_product_attention']['median_s']:.2f}x",
        "temp MiB": "n/a" if r["temp_bytes"] is None else f"{r['temp_bytes'] / 2**20:.1f}",
      }
      rows.append(row)
      data.append({**row, **r})
  growth = []
  for name in cases:
    temps = [d["temp_bytes"] for d in data if d["implementation"] == name]
    steps = zip(config.times, config.times[1:], temps, temps[1:], strict=False)
    growth.append({"implementation": name, **{f"T {a} -> {b}": f"{m_b / m_a:.2f}x" for a, b, m_a, m_b in steps}})
  report.write(
    "attention",
    f"Attention speed and memory, {timing.device_name()}",
    [
      (
        f"forward+backward, causal, B={config.batch}, {config.heads} heads of {config.head_dim}, {config.dtype}, "
        f"median of {config.runs} runs after a warm-up",
        report.markdown_table(rows, list(rows[0])),
      ),
      ("Growth of compiled temporary memory with T", report.markdown_table(growth, list(growth[0]))),
    ],
    {"device": timing.device_name(), "rows": data},
    config=config,
    script=__spec__.name,
    argv=argv,
  )


if __name__ == "__main__":
  main()
