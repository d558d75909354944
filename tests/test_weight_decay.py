"""TrainConfig.weight_decay_mask: "matrices" decays weight matrices and kernels (embedding tables
included), never biases or norm scales, as nanoGPT's configure_optimizers; "all" (the default)
decays every parameter, as before."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from seqjax._paths import path_names
from seqjax.recurrent import RNNLanguageModel
from seqjax.train import TrainConfig, split_model
from seqjax.train.step import optimizer_init, optimizer_update
from seqjax.train.trainer import build_optimizer
from seqjax.transformer import GPT, GPTConfig
from tests.helpers import normal, randomize

WEIGHTS = {"kernel", "input_kernel", "recurrent_kernel", "embedding", "table"}  # by name: what should decay


def adamw(mask: str, learning_rate: float, weight_decay: float) -> optax.GradientTransformation:
  config = TrainConfig(
    optimizer="adamw",
    learning_rate=learning_rate,
    weight_decay=weight_decay,
    weight_decay_mask=mask,
    clip_norm=None,
    steps=10,
  )
  return build_optimizer(config)


def names(params) -> list[str]:
  return ["/".join(path_names(path)) for path, _ in jax.tree.leaves_with_path(params)]


def tiny_models():
  gpt = GPTConfig(vocab_size=7, max_length=6, dim=8, num_heads=2, num_layers=1, ff_dim=16, position="learned")
  return [GPT(gpt, rngs=nnx.Rngs(0)), RNNLanguageModel(7, 6, 8, kind="lstm", num_layers=2, rngs=nnx.Rngs(0))]


@pytest.mark.parametrize("model", tiny_models(), ids=lambda m: type(m).__name__)
def test_matrices_decays_kernels_and_embeddings_only(model):
  """One update from a zero gradient moves only what weight decay shrinks: p -> p (1 - lr wd)
  (every parameter drawn nonzero first: a zero bias would look kept even if decayed)."""
  _, params, _ = split_model(randomize(model))
  tx = adamw("matrices", learning_rate=0.1, weight_decay=0.5)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updated, _ = jax.jit(functools.partial(optimizer_update, tx))(zeros, optimizer_init(tx, params), params)
  decayed, kept = [], []
  for name, before, after in zip(names(params), jax.tree.leaves(params), jax.tree.leaves(updated), strict=True):
    if np.array_equal(before, after):
      kept.append(name)
    else:
      np.testing.assert_allclose(after, 0.95 * np.asarray(before), rtol=1e-6, err_msg=name)
      decayed.append(name)
  assert decayed and all(name.rsplit("/", 1)[-1] in WEIGHTS for name in decayed), decayed
  assert kept and all(name.rsplit("/", 1)[-1] in {"bias", "scale"} for name in kept), kept
  if isinstance(model, GPT):  # its attention biases are [heads, head_dim]: rank 2, and kept by name
    assert "stack/blocks/0/self_attention/query/bias" in kept


def lstm_params() -> dict:
  """A tiny LSTM LM's parameters as a plain dict of float32 arrays, by name."""
  _, params, _ = split_model(RNNLanguageModel(5, 4, 6, kind="lstm", rngs=nnx.Rngs(1)))
  return {name: np.asarray(p) for name, p in zip(names(params), jax.tree.leaves(params), strict=True)}


def test_matrices_equals_optax_masked_adamw_and_torch_adamw_with_nanogpts_groups():
  torch = pytest.importorskip("torch")
  lr, wd, steps = 0.05, 0.3, 3
  start = lstm_params()
  grads = [{name: normal(10 * k + i, *p.shape) for i, (name, p) in enumerate(start.items())} for k in range(steps)]

  def run(tx):
    params = {name: jnp.asarray(p) for name, p in start.items()}
    state = optimizer_init(tx, params)
    update = jax.jit(functools.partial(optimizer_update, tx))  # one compile, not an eager op at a time
    for g in grads:
      params, state = update({n: jnp.asarray(v) for n, v in g.items()}, state, params)
    return params

  ours = run(adamw("matrices", lr, wd))
  by_name = {name: name.rsplit("/", 1)[-1] in WEIGHTS for name in start}
  reference = run(optax.adamw(lr, weight_decay=wd, mask=by_name))
  everything = run(adamw("all", lr, wd))

  tensors = {name: torch.nn.Parameter(torch.from_numpy(p.copy())) for name, p in start.items()}
  groups = [  # nanoGPT's configure_optimizers: rank >= 2 decays, the rest does not
    {"params": [t for t in tensors.values() if t.dim() >= 2], "weight_decay": wd},
    {"params": [t for t in tensors.values() if t.dim() < 2], "weight_decay": 0.0},
  ]
  torch_adamw = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
  for g in grads:
    for name, t in tensors.items():
      t.grad = torch.from_numpy(g[name])
    torch_adamw.step()

  for name in start:
    np.testing.assert_allclose(ours[name], reference[name], rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(ours[name], tensors[name].detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
  bias = "rnn/layers/0/cell/bias"
  assert not np.allclose(ours[bias], everything[bias], rtol=1e-6, atol=0)  # "all" decays the bias too
  np.testing.assert_allclose(ours["readout/kernel"], everything["readout/kernel"], rtol=1e-6)


@pytest.mark.parametrize(
  "fields,message",
  [
    ({"optimizer": "adam", "weight_decay_mask": "matrices"}, "weight_decay_mask='matrices' needs optimizer 'adamw'"),
    ({"optimizer": "adamw", "weight_decay_mask": "kernels"}, "weight_decay_mask must be one of"),
  ],
)
def test_bad_mask_is_refused_by_name(fields, message):
  with pytest.raises(ValueError, match=message):
    TrainConfig(**fields).check()
