"""`Visibility`: which keys each query of an attention may read (key padding, packed segments,
causality), checked once and then passed down as it is.

A model checks its masks where it takes them (`Visibility.checked`, its messages naming the
model's own arguments) and hands the checked value to its stack, its blocks and their attention layers, which
take it without checking the masks again: they compare only the [B, T, S] it was checked for
with their own (integers, no array is read). Every public layer still takes the masks themselves
too, and checks those (`take`). Masks reach rank 4 only in the attention core
(`Visibility.dense_mask`, `core.dot_product_attention`); the fused paths read them as they are.
"""

import jax
from flax import struct

from seqjax.attention.core import check_cross_segment_ids, check_key_mask, check_segment_ids, segment_mask

NAMES = {"key_mask": "key_mask", "segment_ids": "segment_ids", "key_segment_ids": "key_segment_ids"}


@struct.dataclass
class Visibility:
  """Checked masks of one attention of queries [B, T] over keys [B, S] (build it with `checked`).

  key_mask [B, S] bool | None: False on key padding, never attended to.
  segment_ids [B, T] int | None: packed sequences; a query reads the keys of its own id.
  key_segment_ids [B, S] int | None: the keys' ids in cross-attention (None: the keys are the queries').
  causal: a query at t reads keys s <= t only.
  shape: the (B, T, S) the masks were checked for.
  """

  key_mask: jax.Array | None
  segment_ids: jax.Array | None
  key_segment_ids: jax.Array | None
  causal: bool = struct.field(pytree_node=False)
  shape: tuple[int, int, int] = struct.field(pytree_node=False)

  def dense_mask(self) -> jax.Array | None:
    """[B, 1, T, S] bool (True: may attend) of padding and segments, for the dense core; None when
    there are neither. Causality stays the core's is_causal."""
    mask = None if self.key_mask is None else self.key_mask[:, None, None, :]
    if self.segment_ids is not None:
      segments = segment_mask(self.segment_ids, self.key_segment_ids)  # [B, 1, T, S]
      mask = segments if mask is None else mask & segments
    return mask

  @classmethod
  def checked(
    cls,
    batch: int,
    query_length: int,
    key_length: int,
    *,
    key_mask: jax.Array | None = None,
    segment_ids: jax.Array | None = None,
    key_segment_ids: jax.Array | None = None,
    causal: bool = False,
    names: dict[str, str] | None = None,
    mask_axes: str = "[B, S]",
  ) -> "Visibility":
    """The masks of queries [B, T] over keys [B, S], checked: key_mask [B, S] bool with a real key in
    every row; segment_ids [B, T] int >= 0 (self-attention, T = S), or with key_segment_ids [B, S]
    (cross-attention) every query id among its row's key ids (values checked when concrete).
    names: the caller's arguments for "key_mask", "segment_ids", "key_segment_ids" in the messages;
    mask_axes: how key_mask's axes are spelled there."""
    names = NAMES | (names or {})
    if not isinstance(causal, bool):
      raise ValueError(f"causal must be True or False, got {causal!r}")
    check_key_mask(key_mask, batch, key_length, name=names["key_mask"], axes=mask_axes)
    if key_segment_ids is None:
      check_segment_ids(segment_ids, batch, query_length, key_length, name=names["segment_ids"])
    elif segment_ids is None:
      raise ValueError(f"{names['key_segment_ids']} needs {names['segment_ids']}, the queries' [B, T] segment ids")
    else:
      check_cross_segment_ids(
        segment_ids,
        key_segment_ids,
        batch,
        query_length,
        key_length,
        names=(names["segment_ids"], names["key_segment_ids"]),
      )
    return cls(key_mask, segment_ids, key_segment_ids, causal, (batch, query_length, key_length))


def take(
  given: Visibility | None,
  batch: int,
  query_length: int,
  key_length: int,
  *,
  what: str,
  **masks,
) -> Visibility:
  """A layer's masks as one Visibility: `given` (checked where the model took its input: only its
  shape is compared with this layer's), or the masks passed to the layer (`Visibility.checked`'s keywords),
  checked now. Both at once are refused. what: the layer, for the messages."""
  if given is None:
    return Visibility.checked(batch, query_length, key_length, **masks)
  passed = sorted(name for name in ("key_mask", "segment_ids", "key_segment_ids") if masks.get(name) is not None)
  passed += ["causal=True"] if masks.get("causal") else []
  if passed:
    raise ValueError(f"{what}: give a checked visibility or the masks {passed}, not both")
  if given.shape != (batch, query_length, key_length):
    raise ValueError(
      f"{what}: the visibility was checked for [B, T, S] = {list(given.shape)}, "
      f"but this attention is [B, T, S] = {[batch, query_length, key_length]}"
    )
  return given
