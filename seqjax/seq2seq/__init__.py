"""Sequence to sequence: RNN encoder-decoders with and without attention, and one decoding API."""
