"""Data for sequence-to-sequence work: synthetic tasks, vocabularies, subwords, batching, a Bible corpus."""
