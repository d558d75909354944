"""Weight interop with other frameworks' published layouts; Hugging Face model folders' tokenizers."""

from seqjax.interop.cudnn_rnn import rnn_to_cudnn
from seqjax.interop.pretrained import from_pretrained, save_pretrained
from seqjax.interop.tokenizer import Tokenizer, load_tokenizer
from seqjax.interop.torch_rnn import rnn_from_torch, rnn_to_torch

__all__ = [
  "Tokenizer",
  "from_pretrained",
  "load_tokenizer",
  "rnn_from_torch",
  "rnn_to_cudnn",
  "rnn_to_torch",
  "save_pretrained",
]
