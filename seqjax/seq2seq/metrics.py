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


def _statistics(metric, hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
  """sacrebleu's sufficient statistics of each sentence: [N, S] (summed over sentences they give
  the corpus score exactly)."""
  return np.asarray(metric._extract_corpus_statistics(list(hypotheses), [list(references)]), np.int64)


def _score(metric, summed: np.ndarray) -> float:
  return metric._compute_score_from_stats([int(x) for x in summed]).score


def _per_10_words(words: np.ndarray, bleus: np.ndarray) -> float:
  """The least-squares slope of BLEU against source words, per 10 words."""
  return float(10.0 * np.polyfit(words, bleus, 1)[0])


def bootstrap_by_length(
  hypotheses: Sequence[str],
  references: Sequence[str],
  source_lengths: Sequence[int],
  edges: Sequence[float],
  *,
  floor: Sequence[str] | None = None,
  samples: int = 1000,
  confidence: float = 0.95,
  seed: int = 0,
) -> dict:
  """`bleu_by_length` with percentile bootstrap intervals: each resample draws every bucket's
  verses with replacement (the buckets' sizes kept) and scores the draw as a corpus, exactly as
  sacrebleu scores it (from summed sentence statistics).

  floor: hypotheses of a control on the same verses (e.g. decoded from other verses' sources);
  scored on the same resamples, so `gain_low`/`gain_high` bound BLEU minus the floor's BLEU
  (a paired interval). The slope of BLEU against source length, in BLEU per 10 source words, is a
  least-squares line through the buckets' BLEU at their mean source length, with its interval
  from the same resamples (buckets without a BLEU left out). Intervals are [low, high] at
  `confidence`. -> {"buckets": [{lengths, sentences, mean_words, bleu, bleu_low, bleu_high, chrf,
  chrf_low, chrf_high[, floor_bleu, floor_low, floor_high, gain, gain_low, gain_high]}],
  "slope": {value, low, high}[, "floor_slope": ...]}."""
  if not len(hypotheses) == len(references) == len(source_lengths):
    raise ValueError(
      f"hypotheses ({len(hypotheses)}), references ({len(references)}) and source_lengths "
      f"({len(source_lengths)}) must have one entry per verse"
    )
  if floor is not None and len(floor) != len(references):
    raise ValueError(f"floor must have one hypothesis per verse ({len(references)}), got {len(floor)}")
  if not (isinstance(samples, int) and samples >= 10):
    raise ValueError(f"samples must be an integer >= 10, got {samples!r}")
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
  bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()
  systems = {"": hypotheses} | ({} if floor is None else {"floor_": floor})
  stats = {k: (_statistics(bleu, h, references), _statistics(chrf, h, references)) for k, h in systems.items()}
  lengths = np.asarray(source_lengths)
  rng = np.random.default_rng(seed)
  tail = (1.0 - confidence) / 2 * 100
  interval = lambda values: (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))  # noqa: E731
  rows, curves = [], {k: [] for k in systems}  # curves: per system, per bucket with a BLEU, [samples] BLEUs
  centres = []
  for low, high in itertools.pairwise(edges):
    picked = np.flatnonzero((lengths >= low) & (lengths < high))
    if not len(picked):
      continue
    draws = picked[rng.integers(0, len(picked), (samples, len(picked)))]  # [samples, n] verse indices
    has_bleu = max(len(references[i].split()) for i in picked) >= 4  # else no 4-grams: BLEU 0 whatever
    row = {"lengths": f"{low}+" if high == math.inf else f"{low}-{high - 1}", "sentences": len(picked)}
    row["mean_words"] = float(lengths[picked].mean())
    sampled = {}
    for key, (bleu_stats, chrf_stats) in stats.items():
      point_chrf = _score(chrf, chrf_stats[picked].sum(0))
      chrfs = [_score(chrf, chrf_stats[d].sum(0)) for d in draws]
      if has_bleu:
        point = _score(bleu, bleu_stats[picked].sum(0))
        sampled[key] = np.array([_score(bleu, bleu_stats[d].sum(0)) for d in draws])
        low_b, high_b = interval(sampled[key])
      else:
        point = low_b = high_b = None
      if key:
        row |= {"floor_bleu": point, "floor_low": low_b, "floor_high": high_b, "floor_chrf": point_chrf}
      else:
        row |= {"bleu": point, "bleu_low": low_b, "bleu_high": high_b}
        row |= {"chrf": point_chrf, "chrf_low": interval(chrfs)[0], "chrf_high": interval(chrfs)[1]}
      if has_bleu:
        curves[key].append((point, sampled[key]))
    if floor is not None and has_bleu:
      gains = sampled[""] - sampled["floor_"]
      row |= {"gain": row["bleu"] - row["floor_bleu"], "gain_low": interval(gains)[0], "gain_high": interval(gains)[1]}
    if has_bleu:
      centres.append(row["mean_words"])
    rows.append(row)
  result = {"buckets": rows}
  for key in systems:
    if len(centres) >= 2:
      x = np.asarray(centres)
      points = np.array([p for p, _ in curves[key]])
      draws = np.stack([s for _, s in curves[key]], axis=1)  # [samples, buckets]
      low_s, high_s = interval([_per_10_words(x, d) for d in draws])
      result[f"{key}slope"] = {"value": _per_10_words(x, points), "low": low_s, "high": high_s}
  return result
