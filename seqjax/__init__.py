"""seqjax: the road from recurrent networks to Transformers, in JAX and Flax NNX.

Axis letters used in shape comments and docstrings across the package:

    B  batch                     T  time (target / query length)
    S  source (key/value length) F  input features of a recurrent cell
    H  hidden units of a cell    G  gates stacked in a fused kernel (Elman 1, GRU 3, LSTM 4)
    L  layers                    N  attention heads
    D  model dim / head dim      V  vocabulary size
"""

__version__ = "0.1.0"
