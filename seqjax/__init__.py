"""seqjax: the road from recurrent networks to Transformers, in JAX and Flax NNX.

Axis letters used in shape comments and docstrings across the package:

    B  batch                     T  time (target / query length)
    S  source (key/value length) F  input features of a recurrent cell
    H  hidden units of a cell    G  gates stacked in a fused kernel (Elman 1, GRU 3, LSTM 4)
    L  layers                    N  attention heads
    D  model dim / head dim      V  vocabulary size
    P  prompt length             K  beams

Argument names, one meaning each:

    in_features, hidden_features, features   a layer's input, recurrent state (H) and output
                                             widths, as flax's layers name them (recurrent
                                             models and their configs too)
    embed_dim                                a token embedding's width in a recurrent model
    dim, ff_dim, num_heads, head_dim         a Transformer's width D, feed-forward width, N, Dh
    vocab_size (source_/target_vocab_size)   V, per vocabulary when there are two
    mask, src_mask, prompt_mask, ...         padding: [B, T] bool, True on real tokens, named
                                             after the sequence it covers; key_mask [B, S] at the
                                             attention level; rank-4 `mask` only in the attention core
"""

__version__ = "0.1.0"
