"""Padding, masks and batches (length-bucketed, or drawn per training step) of token ids."""

from collections.abc import Sequence

import numpy as np

from seqjax import _validate
from seqjax.data.vocab import BOS, EOS, PAD

ID_RANGE = f"integer token ids in [0, {np.iinfo(np.int32).max}] (int32)"


def pad(sequences: Sequence[Sequence[int]], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """-> (ids [B, L] int32 padded with PAD, mask [B, L] bool, True on each sequence's own tokens,
  whatever their ids: the mask follows the lengths, so a PAD id inside a sequence stays real).
  Each sequence must hold integer ids in [0, 2**31 - 1]: floats, bools, negative ids and ids
  beyond int32 are refused, never rounded or wrapped."""
  if len(sequences) == 0:
    raise ValueError("sequences must hold at least one sequence, got none")
  if any(len(s) == 0 for s in sequences):
    raise ValueError("sequences must not be empty: every sequence needs at least one token")
  if length is not None:
    _validate.positive_int("length", length)
  length = length or max(len(s) for s in sequences)
  ids = np.full((len(sequences), length), PAD, np.int32)
  lengths = np.array([len(s) for s in sequences])
  for row, s in enumerate(sequences):
    if len(s) > length:
      raise ValueError(f"a sequence of {len(s)} tokens does not fit length {length}")
    ids[row, : len(s)] = _row_ids(row, s)
  return ids, np.arange(length)[None, :] < lengths[:, None]


def _row_ids(row: int, sequence: Sequence[int]) -> np.ndarray:
  """sequences[row] as an integer array, or ValueError naming it unless it holds ids in ID_RANGE."""
  values = np.asarray(sequence)
  if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
    raise ValueError(f"sequences[{row}] must hold {ID_RANGE}, got {values.dtype} values {values.tolist()!r:.60}")
  if values.min() < 0 or values.max() > np.iinfo(np.int32).max:
    raise ValueError(f"sequences[{row}] must hold {ID_RANGE}, got min {values.min()} and max {values.max()}")
  return values


def seq2seq_batch(
  pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
  *,
  source_length: int | None = None,
  target_length: int | None = None,
) -> dict[str, np.ndarray]:
  """src [B, S] + src_mask; tgt_in = BOS + target, tgt_out = target + EOS, tgt_mask [B, T].

  Fixed source_length / target_length (T counts the BOS or EOS) keep shapes, and so jit
  compilations, the same across batches; by default each batch pads to its longest sequence."""
  src, src_mask = pad([s for s, _ in pairs], source_length)
  tgt_in, _ = pad([[BOS, *t] for _, t in pairs], target_length)
  tgt_out, tgt_mask = pad([[*t, EOS] for _, t in pairs], target_length)
  return {"src": src, "src_mask": src_mask, "tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_mask": tgt_mask}


def step_indices(seed: int, step: int, count: int, batch_size: int) -> np.ndarray:
  """Indices [batch_size] of the examples of global batch `step`, drawn without replacement from
  `count` examples by a generator seeded with (seed, step): the batch depends on the step alone,
  as a `seqjax.train.fit` batch_fn needs (a resumed run sees the same batches)."""
  _validate.positive_int("batch_size", batch_size)
  if count < batch_size:
    raise ValueError(f"count ({count} examples) must be at least batch_size ({batch_size}) to draw without replacement")
  return np.random.default_rng([seed, step]).choice(count, batch_size, replace=False)


def bucketed_batches(lengths: Sequence[int], batch_size: int, *, seed: int, bucket_width: int = 8) -> list[np.ndarray]:
  """Index batches of similar lengths (little padding): sort by length within shuffled buckets
  of `bucket_width` length units, cut into batches, shuffle the batches. Deterministic in seed."""
  _validate.positive_int("batch_size", batch_size)
  _validate.positive_int("bucket_width", bucket_width)
  rng = np.random.default_rng(seed)
  lengths = np.asarray(lengths)
  order = np.lexsort((rng.permutation(len(lengths)), lengths // bucket_width))
  batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
  return [batches[i] for i in rng.permutation(len(batches))]
