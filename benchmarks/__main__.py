"""Every benchmark in one command: `python -m benchmarks default` (or `smoke`, or `gpu` on a GPU:
bfloat16 attention with cuDNN, a bf16 GPT-2-small step); results/bench/*."""

import sys

from benchmarks import attention, charlm_speed, gpt, layers, rnn, scan, seq2seq_step

SUITE = (rnn, attention, scan, layers, seq2seq_step, gpt, charlm_speed)


def main(argv=None):
  argv = sys.argv[1:] if argv is None else argv
  for module in SUITE:
    module.main(argv)


if __name__ == "__main__":
  main()
