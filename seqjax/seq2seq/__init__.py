"""Sequence to sequence: RNN encoder-decoders with and without attention (decoded by `seqjax.decoding`), metrics."""

from seqjax.seq2seq.model import Seq2Seq, Seq2SeqConfig, teacher_forced_loss

__all__ = ["Seq2Seq", "Seq2SeqConfig", "teacher_forced_loss"]
