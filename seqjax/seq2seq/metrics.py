"""Translation metrics: corpus BLEU and chrF through sacrebleu, exact match, BLEU by source length."""

import itertools
import math
from collections.abc import Sequence

import numpy as np
import sacrebleu


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """sacrebleu's corpus BLEU (13a tokenization), one reference per sentence."""
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
  return sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  return sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  return float(np.mean([h == r for h, r in zip(hypotheses, references, strict=True)]))


def bleu_by_length(
  hypotheses: Sequence[str], references: Sequence[str], source_lengths: Sequence[int], edges: Sequence[int]
) -> list[dict]:
  """Corpus BLEU and chrF within each source-length bucket [edges[i], edges[i + 1]) (the seeds'
  cliff table; a last edge of math.inf makes an open bucket, labelled e.g. "41+"). BLEU is None
  for a bucket whose references are all shorter than 4 words: it has no 4-grams, so its BLEU
  would be 0 whatever the hypotheses."""
  lengths = np.asarray(source_lengths)
  rows = []
  for low, high in itertools.pairwise(edges):
    picked = np.flatnonzero((lengths >= low) & (lengths < high))
    if len(picked):
      hyps, refs = [hypotheses[i] for i in picked], [references[i] for i in picked]
      bleu = corpus_bleu(hyps, refs) if max(len(r.split()) for r in refs) >= 4 else None
      rows.append(
        {
          "lengths": f"{low}+" if high == math.inf else f"{low}-{high - 1}",
          "sentences": len(picked),
          "bleu": bleu,
          "chrf": corpus_chrf(hyps, refs),
        }
      )
  return rows
