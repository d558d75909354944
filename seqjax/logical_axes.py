"""Logical axis names, declared by each sharded parameter where it is created; the one rules table
in `seqjax.train.sharding` maps them onto the ("data", "model") mesh.

    embed      the model width D           heads      attention heads N
    head_dim   one head's width Dh         mlp        the feed-forward width D_ff
    vocab      the vocabulary V
"""

EMBED, HEADS, HEAD_DIM, MLP, VOCAB = "embed", "heads", "head_dim", "mlp", "vocab"


def axes(*names: str) -> dict:
  """Variable metadata naming each axis of a parameter (e.g. `kernel_metadata=axes(EMBED, MLP)`);
  recorded only: the parameter is placed when `seqjax.train.sharding` shards the model."""
  return {"out_sharding": names, "eager_sharding": False}
