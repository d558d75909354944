"""The bottleneck experiment's test set shares no sentence with its training set, at every length."""

import dataclasses

from experiments.bottleneck import CONFIGS
from harness.synthetic_translation import draw, held_out


def test_test_sentences_are_distinct_and_never_trained_on():
  config = dataclasses.replace(CONFIGS["default"][1], held_out_percent=10)
  train = draw(3000, (0, 2), 0, test=False, config=config)
  tests = [draw(200, (k, k), 1000 + k, test=True, config=config) for k in range(3)]
  train_sources = {tuple(s) for s, _ in train}
  assert len(train) == 3000
  for k, pairs in enumerate(tests):
    sources = [tuple(s) for s, _ in pairs]
    assert len(set(sources)) == len(sources)  # distinct
    assert not set(sources) & train_sources  # none trained on
    assert all(len(s) == 5 + 4 * k for s in sources)
  # 5-word sentences: 300 exist, about 10% of them in the test partition; longer ones: as many as asked
  assert 15 <= len(tests[0]) <= 45 and len(tests[1]) == len(tests[2]) == 200


def test_the_partition_is_a_fixed_function_of_the_sentence():
  sentence = "the cat that saw the dogs sees the bird".split()
  assert held_out(sentence, 10) == held_out(list(sentence), 10)
  assert held_out(sentence, 50) or not held_out(sentence, 10)  # a larger share only adds sentences
