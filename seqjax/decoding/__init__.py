"""Decoding: one protocol for every decodable model (`protocol`), greedy, sampling (temperature,
top-k, top-p) and beam search over it (`search`), the token choice itself (`sampling`), and
`Uncached`, which gives the protocol to any causal language model without a cache."""

from seqjax.decoding.protocol import Decodable, prefill_by_steps
from seqjax.decoding.sampling import check_sampling, sample_logits
from seqjax.decoding.search import beam_search, greedy, sample
from seqjax.decoding.uncached import Uncached, UncachedState

__all__ = [
  "Decodable",
  "Uncached",
  "UncachedState",
  "beam_search",
  "check_sampling",
  "greedy",
  "prefill_by_steps",
  "sample",
  "sample_logits",
]
