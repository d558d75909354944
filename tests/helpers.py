"""Small builders shared by the tests."""

import jax
import numpy as np
from flax import nnx


def randomize(module, seed: int = 0, scale: float = 0.5):
  """Overwrite every parameter (biases included) with N(0, scale^2) draws."""
  rng = np.random.default_rng(seed)
  for _, param in nnx.iter_graph(module):
    if isinstance(param, nnx.Param):
      value = param[...]
      param[...] = jax.numpy.asarray(scale * rng.standard_normal(value.shape), value.dtype)
  return module


@nnx.jit
def forward(model, *inputs, **options):
  """model(*inputs, **options) compiled as one program: called eagerly, each of a model's few hundred
  ops compiles on its own (tens of milliseconds each on the CPU the tests run on)."""
  return model(*inputs, **options)


def normal(seed: int, *shape, dtype=np.float32):
  return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def prefix_mask(lengths, time: int) -> jax.Array:
  """[B] lengths -> [B, T] bool, True on each row's first `length` steps (the real tokens)."""
  return jax.numpy.arange(time)[None, :] < jax.numpy.asarray(lengths)[:, None]


def redraw_torch(model, seed: int = 0):
  """A torch model with every parameter redrawn as N(0, 0.3^2) (so a port is tested away from the
  init's symmetries), in eval mode. torch is imported here: the tests that call this skip without it."""
  import torch

  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
  return model.eval()
