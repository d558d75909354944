"""Decoding: greedy, sampling (temperature, top-k, top-p) and beam search over a model's
`start`/`step` protocol (`search`), and the token choice itself (`sampling`)."""

from seqjax.decoding.sampling import check_sampling, sample_logits
from seqjax.decoding.search import beam_search, greedy, sample

__all__ = ["beam_search", "check_sampling", "greedy", "sample", "sample_logits"]
