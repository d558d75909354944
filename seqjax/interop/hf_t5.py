"""T5 v1.0 and v1.1 (Hugging Face `T5ForConditionalGeneration`) <-> seqjax `EncoderDecoder`
(`t5_like`: relative position bias, pre-norm RMSNorm, no biases). PyTorch nn.Linear layout;
names, with N = block index:

    shared.weight [V, D]                                source_embed/tokens/embedding (both stacks)
    {encoder,decoder}.block.N.layer.0.SelfAttention.{q,k,v,o}   .../blocks/N/self_attention/...
    {encoder,decoder}.block.0.layer.0.SelfAttention.relative_attention_bias  encoder_bias / decoder_bias
    decoder.block.N.layer.1.EncDecAttention.{q,k,v,o}           decoder/blocks/N/cross_attention/...
    ...layer.K.layer_norm (RMSNorm weight)                      the norm before that sublayer
    ...DenseReluDense.wi (v1.0) or wi_0, wi_1 (v1.1), wo        feed_forward/inner (, gate), outer
    {encoder,decoder}.final_layer_norm                           {encoder,decoder}/final_norm
    lm_head.weight [V, D]                                       head (v1.1's own head) or tied to shared

T5 computes attention without the 1/sqrt(d_kv) scaling: `t5_like` sets attention_logit_scale
1.0, so the query kernels load as they are. v1.0 multiplies the decoder output by
d_model^-0.5 before its tied output layer (`scale_decoder_output`); transformers 4.x keys that on
`tie_word_embeddings`, 5.x on `scale_decoder_outputs`.
"""

from seqjax.interop.hf_layout import Rule, Tied, heads_in, heads_out, linear, require, same, size
from seqjax.transformer.encoder_decoder import EncoderDecoder, EncoderDecoderConfig, t5_like

MODEL = EncoderDecoder
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
IGNORED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)  # never used (transformers too)


def config_from_hf(hf: dict) -> EncoderDecoderConfig:
  require(hf, {"is_encoder_decoder": True}, "T5")
  proj = hf.get("feed_forward_proj", "relu")
  gated = proj.startswith("gated-")
  act = "gelu_new" if proj == "gated-gelu" else proj.removeprefix("gated-")
  if act not in ACTIVATIONS:
    raise ValueError(
      f"config.json: feed_forward_proj {proj!r} is not supported; activations known: {list(ACTIVATIONS)}"
    )
  untied = hf.get("tie_word_embeddings", True) is False  # transformers 4.x's v1.1 (5.x ties every T5)
  scale = hf.get("scale_decoder_outputs", not untied)
  heads, head_dim, dim = size(hf, "num_heads"), size(hf, "d_kv"), size(hf, "d_model")
  return t5_like(
    vocab_size=size(hf, "vocab_size"),
    dim=dim,
    num_heads=heads,
    head_dim=None if heads * head_dim == dim else head_dim,
    ff_dim=size(hf, "d_ff"),
    num_encoder_layers=size(hf, "num_layers"),
    num_decoder_layers=hf.get("num_decoder_layers") or size(hf, "num_layers"),
    activation=ACTIVATIONS[act],
    gated_feed_forward=gated,
    dropout_rate=hf.get("dropout_rate", 0.1),
    layer_norm_epsilon=hf.get("layer_norm_epsilon", 1e-6),
    separate_head=untied,
    scale_decoder_output=scale,
    relative_buckets=hf.get("relative_attention_num_buckets", 32),
    relative_max_distance=hf.get("relative_attention_max_distance", 128),
  )


def config_to_hf(config: EncoderDecoderConfig) -> dict:
  expected = t5_like(**{k: getattr(config, k) for k in T5_FREE})  # the block's fields read through config
  if config != expected:
    differing = [k for k in config.__dataclass_fields__ if k != "block" and getattr(config, k) != getattr(expected, k)]
    differing += [f"block.{k}" for k in config.block.__dataclass_fields__ if getattr(config, k) != getattr(expected, k)]
    raise ValueError(f"model: this EncoderDecoder is not a T5 (t5_like differs in {sorted(differing)})")
  block = config.block
  activation = {v: k for k, v in ACTIVATIONS.items() if k != "gelu_pytorch_tanh"}[block.activation]
  return {
    "architectures": ["T5ForConditionalGeneration"],
    "model_type": "t5",
    "is_encoder_decoder": True,
    "vocab_size": config.vocab_size,
    "d_model": block.dim,
    "num_heads": block.num_heads,
    "d_kv": head_dim(config),
    "d_ff": block.ff_dim,
    "num_layers": config.num_encoder_layers,
    "num_decoder_layers": config.num_decoder_layers,
    "feed_forward_proj": ("gated-" if block.gated_feed_forward else "") + activation,
    "dropout_rate": block.dropout_rate,
    "layer_norm_epsilon": block.layer_norm_epsilon,
    "tie_word_embeddings": not config.separate_head,
    "scale_decoder_outputs": config.scale_decoder_output,
    "relative_attention_num_buckets": config.relative_buckets,
    "relative_attention_max_distance": config.relative_max_distance,
    "decoder_start_token_id": 0,
    "pad_token_id": 0,
    "eos_token_id": 1,
  }


T5_FREE = (  # the EncoderDecoderConfig fields (and its block's) a T5 checkpoint sets; every other is t5_like's
  "vocab_size", "dim", "num_heads", "head_dim", "ff_dim", "num_encoder_layers", "num_decoder_layers", "activation",
  "gated_feed_forward", "dropout_rate", "layer_norm_epsilon", "separate_head", "scale_decoder_output",
  "relative_buckets", "relative_max_distance", "max_length", "attention_implementation",
)  # fmt: skip


def head_dim(config: EncoderDecoderConfig) -> int:
  return config.block.head_dim or config.block.dim // config.block.num_heads


def model_config(model: EncoderDecoder) -> EncoderDecoderConfig:
  return model.config


def _attention(hf: str, ours: str, config: EncoderDecoderConfig) -> list[Rule]:
  N = config.block.num_heads
  found = [
    rule
    for x, name in (("q", "query"), ("k", "key"), ("v", "value"))
    for rule in heads_in(f"{hf}.{x}", f"{ours}/{name}", N, bias=False)
  ]
  return found + heads_out(f"{hf}.o", f"{ours}/out", N, bias=False)


def _feed_forward(hf: str, ours: str, config: EncoderDecoderConfig) -> list[Rule]:
  wi = (
    linear(f"{hf}.wi_0", f"{ours}/inner", bias=False) + linear(f"{hf}.wi_1", f"{ours}/gate", bias=False)
    if config.block.gated_feed_forward
    else linear(f"{hf}.wi", f"{ours}/inner", bias=False)
  )
  return wi + linear(f"{hf}.wo", f"{ours}/outer", bias=False)


def rules(config: EncoderDecoderConfig) -> tuple[list[Rule], list[Tied]]:
  found = [same("shared.weight", "source_embed/tokens/embedding")]
  for stack, layers in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
    found.append(
      same(f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight", f"{stack}_bias/embedding")
    )
    for i in range(layers):
      hf, ours = f"{stack}.block.{i}.layer", f"{stack}/blocks/{i}"
      sublayers = [("0.SelfAttention", "self_attention")]
      if stack == "decoder":
        sublayers.append(("1.EncDecAttention", "cross_attention"))
      for theirs, name in sublayers:
        found += _attention(f"{hf}.{theirs}", f"{ours}/{name}", config)
        found.append(same(f"{hf}.{theirs[0]}.layer_norm.weight", f"{ours}/{name}_norm/scale"))
      ff = len(sublayers)
      found += _feed_forward(f"{hf}.{ff}.DenseReluDense", f"{ours}/feed_forward", config)
      found.append(same(f"{hf}.{ff}.layer_norm.weight", f"{ours}/feed_forward_norm/scale"))
    found.append(same(f"{stack}.final_layer_norm.weight", f"{stack}/final_norm/scale"))
  tied = [Tied(f"{s}.embed_tokens.weight", "source_embed/tokens/embedding") for s in ("encoder", "decoder")]
  if config.separate_head:
    return [*found, Rule("lm_head.weight", ("head/kernel",), lambda w: (w.T,), lambda k: k.T)], tied
  return found, [*tied, Tied("lm_head.weight", "source_embed/tokens/embedding")]
