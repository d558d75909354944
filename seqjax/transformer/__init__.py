"""Transformer models built from one set of parts (`blocks.py`): encoder-decoder, GPT, BERT, ViT."""

from seqjax.transformer.bert import BertConfig, BertForPreTraining, BertModel, mask_tokens
from seqjax.transformer.blocks import FeedForward, TransformerBlock, TransformerBlockConfig, TransformerStack
from seqjax.transformer.encoder_decoder import EncoderDecoder, EncoderDecoderConfig, t5_like
from seqjax.transformer.gpt import GPT, GPTConfig
from seqjax.transformer.vit import ViT, ViTConfig, patchify

__all__ = [
  "GPT",
  "BertConfig",
  "BertForPreTraining",
  "BertModel",
  "EncoderDecoder",
  "EncoderDecoderConfig",
  "FeedForward",
  "GPTConfig",
  "TransformerBlock",
  "TransformerBlockConfig",
  "TransformerStack",
  "ViT",
  "ViTConfig",
  "mask_tokens",
  "patchify",
  "t5_like",
]
