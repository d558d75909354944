"""Seeded synthetic sequence-to-sequence tasks with controllable lengths.

Each generator returns (source, target) pairs of symbol lists (strings), ready for a `Vocab`:

    copy       a b c        -> a b c
    reverse    a b c        -> c b a
    sort       c a b        -> a b c
    addition   3 4 + 5 9    -> 9 3          (digits, most significant first)
    translate  the cat that saw the dogs sees the bird -> gato perros vio pájaro ve
               word reordering (SVO -> SOV, relative clauses before their verb) and long-distance
               agreement (the final verb agrees with the subject across every relative clause)
"""

import numpy as np

from seqjax import _validate

TASKS = ("copy", "reverse", "sort", "addition", "translate")
_NOUNS = [
  ("cat", "cats", "gato", "gatos"),
  ("dog", "dogs", "perro", "perros"),
  ("bird", "birds", "pájaro", "pájaros"),
  ("man", "men", "hombre", "hombres"),
  ("child", "children", "niño", "niños"),
]
_VERBS = [
  ("sees", "see", "saw", "ve", "ven", "vio"),
  ("likes", "like", "liked", "quiere", "quieren", "quiso"),
  ("follows", "follow", "followed", "sigue", "siguen", "siguió"),
]


def _translate(rng: np.random.Generator, clauses: int) -> tuple[list[str], list[str]]:
  def noun():
    n, plural = _NOUNS[rng.integers(len(_NOUNS))], bool(rng.integers(2))
    return (n[1], n[3]) if plural else (n[0], n[2]), plural

  (subject, subject_t), plural = noun()
  source, target = ["the", subject], [subject_t]
  for _ in range(clauses):  # "that saw the dogs" -> "perros vio"
    verb = _VERBS[rng.integers(len(_VERBS))]
    (obj, obj_t), _ = noun()
    source += ["that", verb[2], "the", obj]
    target += [obj_t, verb[5]]
  verb = _VERBS[rng.integers(len(_VERBS))]
  (obj, obj_t), _ = noun()
  source += [verb[1] if plural else verb[0], "the", obj]
  target += [obj_t, verb[4] if plural else verb[3]]
  return source, target


def generate(task: str, count: int, *, min_length: int, max_length: int, seed: int, alphabet: int = 10):
  """`count` pairs; lengths uniform in [min_length, max_length] (for translate: relative clauses;
  for addition: digits per operand). Symbols of copy/reverse/sort are 'a', 'b', ... (`alphabet` of them)."""
  _validate.choice("task", task, TASKS)
  _validate.positive_int("count", count)
  _validate.positive_int("alphabet", alphabet)
  if alphabet > 26:
    raise ValueError(f"alphabet must be in [1, 26] (the symbols are 'a' to 'z'), got {alphabet}")
  if not 0 <= min_length <= max_length or (min_length == 0 and task != "translate"):
    raise ValueError(f"need 1 <= min_length <= max_length (translate: 0 <=), got {min_length}, {max_length}")
  rng = np.random.default_rng(seed)
  symbols = [chr(ord("a") + i) for i in range(alphabet)]
  pairs = []
  for _ in range(count):
    n = int(rng.integers(min_length, max_length + 1))
    if task == "translate":
      pairs.append(_translate(rng, n))
      continue
    if task == "addition":
      a, b = (int(rng.integers(10 ** (n - 1) if n > 1 else 0, 10**n)) for _ in range(2))
      pairs.append(([*str(a), "+", *str(b)], list(str(a + b))))
      continue
    seq = [symbols[i] for i in rng.integers(0, alphabet, n)]
    target = {"copy": seq, "reverse": seq[::-1], "sort": sorted(seq)}[task]
    pairs.append((seq, list(target)))
  return pairs
