"""Sequence to sequence: RNN encoder-decoders with and without attention (decoded by `seqjax.decoding`), metrics."""
