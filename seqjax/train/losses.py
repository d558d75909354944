"""Losses, computed in float32: token cross-entropy with a padding mask, label smoothing, classification."""

import jax
import jax.numpy as jnp
import optax


def _smoothed_cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float) -> jax.Array:
  """Per-example cross-entropy against (1 - eps) one-hot + eps / V, eps = label_smoothing."""
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
  logits = logits.astype(jnp.float32)
  if label_smoothing == 0.0:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32), label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def token_cross_entropy(
  logits: jax.Array, targets: jax.Array, mask: jax.Array | None = None, *, label_smoothing: float = 0.0
) -> tuple[jax.Array, jax.Array]:
  """Mean cross-entropy over real tokens: logits [B, T, V], targets [B, T], mask [B, T] bool
  (True = real token). Returns (mean loss, number of real tokens)."""
  if logits.shape[:-1] != targets.shape:
    raise ValueError(f"targets must have shape [B, T] = {list(logits.shape[:-1])}, got {list(targets.shape)}")
  if mask is not None and mask.shape != targets.shape:
    raise ValueError(f"mask must have shape [B, T] = {list(targets.shape)}, got {list(mask.shape)}")
  losses = _smoothed_cross_entropy(logits, targets, label_smoothing)  # [B, T]
  weights = jnp.ones(targets.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
  count = jnp.sum(weights)
  return jnp.sum(losses * weights) / jnp.maximum(count, 1.0), count


def classification_cross_entropy(logits: jax.Array, labels: jax.Array, *, label_smoothing: float = 0.0) -> jax.Array:
  """Mean cross-entropy for logits [B, C], labels [B]."""
  if logits.shape[:-1] != labels.shape:
    raise ValueError(f"labels must have shape [B] = {list(logits.shape[:-1])}, got {list(labels.shape)}")
  return jnp.mean(_smoothed_cross_entropy(logits, labels, label_smoothing))
