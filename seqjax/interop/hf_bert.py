"""BERT (Hugging Face `BertForPreTraining`) <-> seqjax `BertForPreTraining`: the config and every
tensor. PyTorch nn.Linear layout (weight [out, in]); names, with N = block index:

    bert.embeddings.{word,position,token_type}_embeddings, LayerNorm   bert/embed/{tokens,positions,types}, norm
    bert.encoder.layer.N.attention.self.{query,key,value}             bert/encoder/blocks/N/self_attention/...
    bert.encoder.layer.N.attention.output.dense, LayerNorm           .../self_attention/out, self_attention_norm
    bert.encoder.layer.N.intermediate.dense, output.dense, LayerNorm .../feed_forward/inner, outer, feed_forward_norm
    bert.pooler.dense                                                 bert/pooler
    cls.predictions.transform.dense, LayerNorm; cls.predictions.bias  transform, transform_norm; mlm_bias
    cls.seq_relationship                                              next_sentence
    cls.predictions.decoder.weight / .bias                            tied to the word embeddings / mlm_bias
"""

from seqjax.interop.hf_layout import (
  PLAIN_BLOCK,
  Rule,
  Tied,
  heads_in,
  heads_out,
  linear,
  norm,
  require,
  require_block,
  same,
  size,
  sizes_from_hf,
  sizes_to_hf,
)
from seqjax.transformer.bert import BertConfig, BertForPreTraining

MODEL = BertForPreTraining
REQUIRED = {  # options of transformers' BertConfig that seqjax's BERT computes only at these values
  "hidden_act": "gelu",
  "position_embedding_type": "absolute",
  "is_decoder": False,
  "add_cross_attention": False,
  "tie_word_embeddings": True,
}


def config_from_hf(hf: dict) -> BertConfig:
  require(hf, REQUIRED, "BERT")
  rates = {hf.get("hidden_dropout_prob", 0.1), hf.get("attention_probs_dropout_prob", 0.1)}
  if len(rates) != 1:
    raise ValueError(f"config.json: hidden_dropout_prob and attention_probs_dropout_prob must be equal, got {rates}")
  return BertConfig(
    vocab_size=size(hf, "vocab_size"),
    max_length=size(hf, "max_position_embeddings"),
    type_vocab_size=hf.get("type_vocab_size", 2),
    dropout_rate=rates.pop(),  # BertConfig's flat dropout_rate: both rates
    **sizes_from_hf(hf),
  )


def config_to_hf(config: BertConfig) -> dict:
  require_block(config.block, {"norm": "post", "activation": "gelu", **PLAIN_BLOCK}, "BERT")
  return {
    "architectures": ["BertForPreTraining"],
    "model_type": "bert",
    "vocab_size": config.vocab_size,
    "max_position_embeddings": config.max_length,
    "type_vocab_size": config.type_vocab_size,
    "hidden_dropout_prob": config.block.dropout_rate,
    "attention_probs_dropout_prob": config.block.attention_dropout_rate,
    **sizes_to_hf(config),
    **REQUIRED,
  }


def model_config(model: BertForPreTraining) -> BertConfig:
  if model.next_sentence is None:
    raise ValueError("model: BertForPreTraining without its next-sentence head has no Hugging Face layout")
  return model.bert.config


def rules(config: BertConfig) -> tuple[list[Rule], list[Tied]]:
  N = config.block.num_heads
  embed = "bert.embeddings"
  found = [
    same(f"{embed}.word_embeddings.weight", "bert/embed/tokens/embedding"),
    same(f"{embed}.position_embeddings.weight", "bert/embed/positions/table"),
    same(f"{embed}.token_type_embeddings.weight", "bert/embed/types/embedding"),
    *norm(f"{embed}.LayerNorm", "bert/embed/norm"),
  ]
  for i in range(config.num_layers):
    hf, ours = f"bert.encoder.layer.{i}", f"bert/encoder/blocks/{i}"
    for name in ("query", "key", "value"):
      found += heads_in(f"{hf}.attention.self.{name}", f"{ours}/self_attention/{name}", N)
    found += heads_out(f"{hf}.attention.output.dense", f"{ours}/self_attention/out", N)
    found += norm(f"{hf}.attention.output.LayerNorm", f"{ours}/self_attention_norm")
    found += linear(f"{hf}.intermediate.dense", f"{ours}/feed_forward/inner")
    found += linear(f"{hf}.output.dense", f"{ours}/feed_forward/outer")
    found += norm(f"{hf}.output.LayerNorm", f"{ours}/feed_forward_norm")
  found += linear("bert.pooler.dense", "bert/pooler")
  found += linear("cls.predictions.transform.dense", "transform") + norm(
    "cls.predictions.transform.LayerNorm", "transform_norm"
  )
  found += [same("cls.predictions.bias", "mlm_bias"), *linear("cls.seq_relationship", "next_sentence")]
  tied = [
    Tied("cls.predictions.decoder.weight", "bert/embed/tokens/embedding"),
    Tied("cls.predictions.decoder.bias", "mlm_bias"),
  ]
  return found, tied
