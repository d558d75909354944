"""Decoding: one protocol for every decodable model (`protocol`), greedy, sampling (temperature,
top-k, top-p) and beam search over it (`search`), and the token choice itself (`sampling`)."""

from seqjax.decoding.protocol import Decodable, prefill_by_steps
from seqjax.decoding.sampling import check_sampling, sample_logits
from seqjax.decoding.search import beam_search, greedy, sample

__all__ = ["Decodable", "beam_search", "check_sampling", "greedy", "prefill_by_steps", "sample", "sample_logits"]
