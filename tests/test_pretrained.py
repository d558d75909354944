"""Hugging Face checkpoints: a transformers model with every parameter redrawn (norms included, so
no mis-mapped weight can hide behind an init of ones or zeros) is saved, loaded by
seqjax.interop.from_pretrained and compared logit by logit; save_pretrained's folder loads back
into transformers. Offline: the models are built from tiny configs."""

import json
import re

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from seqjax import decoding
from seqjax.interop import from_pretrained, save_pretrained
from seqjax.transformer.gpt import GPT, GPTConfig
from seqjax.transformer.norms import layer_norm
from tests.helpers import forward, redraw_torch

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 61


def hf_gpt2(tmp_path, *, tie: bool = True, shard: str | None = None):
  config = transformers.GPT2Config(
    vocab_size=VOCAB, n_positions=16, n_embd=16, n_layer=2, n_head=4, tie_word_embeddings=tie, bos_token_id=0,
    eos_token_id=0,
  )  # fmt: skip
  model = redraw_torch(transformers.GPT2LMHeadModel(config))
  folder = tmp_path / "hf"
  model.save_pretrained(folder, **({"max_shard_size": shard} if shard else {}))
  return model, folder


def tokens(batch: int = 2, length: int = 12) -> np.ndarray:
  return np.random.default_rng(0).integers(0, VOCAB, (batch, length))


def hf_logits(model, ids: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return model(torch.tensor(ids)).logits.numpy()


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_gpt2_logits_match_transformers(tmp_path, tie):
  hf, folder = hf_gpt2(tmp_path, tie=tie)
  ours = from_pretrained(folder)
  assert isinstance(ours, GPT) and ours.config.tie_embeddings == tie
  ids = tokens()
  np.testing.assert_allclose(
    np.asarray(forward(ours, jnp.asarray(ids, jnp.int32))), hf_logits(hf, ids), atol=1e-4, rtol=0
  )


def test_gpt2_loads_from_shards(tmp_path):
  hf, folder = hf_gpt2(tmp_path, shard="20KB")
  assert (folder / "model.safetensors.index.json").is_file()
  ours = from_pretrained(folder)
  ids = tokens()
  np.testing.assert_allclose(
    np.asarray(forward(ours, jnp.asarray(ids, jnp.int32))), hf_logits(hf, ids), atol=1e-4, rtol=0
  )


def test_gpt2_loads_the_layout_openai_s_checkpoints_are_published_in(tmp_path):
  """openai-community/gpt2 and its sizes hold GPT2Model's names (no `transformer.` prefix, no
  lm_head) and each block's causal-mask buffer h.N.attn.bias [1, 1, P, P], as transformers loads them."""
  from safetensors.numpy import load_file, save_file

  _, folder = hf_gpt2(tmp_path)
  saved = load_file(folder / "model.safetensors")
  published = {name.removeprefix("transformer."): value for name, value in saved.items() if name != "lm_head.weight"}
  mask = np.tril(np.ones((16, 16), np.float32))[None, None]  # [1, 1, P, P]
  published |= {f"h.{i}.attn.bias": mask for i in range(2)} | {"h.0.attn.masked_bias": np.array(-1e4, np.float32)}
  save_file(published, folder / "model.safetensors", metadata={"format": "pt"})
  hf = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
  ids = tokens()
  np.testing.assert_allclose(
    np.asarray(forward(from_pretrained(folder), jnp.asarray(ids, jnp.int32))), hf_logits(hf, ids), atol=1e-4, rtol=0
  )
  save_file({**published, "h.1.attn.bias": np.ones_like(mask)}, folder / "model.safetensors")
  with pytest.raises(ValueError, match=r"tensor 'h\.1\.attn\.bias' must be the causal mask"):
    from_pretrained(folder)


def test_gpt2_greedy_generation_equals_transformers_generate(tmp_path):
  hf, folder = hf_gpt2(tmp_path)
  ours = from_pretrained(folder)
  prompt = tokens(2, 4)
  with torch.no_grad():
    theirs = hf.generate(
      torch.tensor(prompt), max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0, min_new_tokens=8
    ).numpy()[:, 4:]
  mine, _ = decoding.greedy(ours, jnp.asarray(prompt, jnp.int32), max_new_tokens=8)
  np.testing.assert_array_equal(np.asarray(mine), theirs)


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_save_pretrained_loads_in_transformers_with_the_same_logits(tmp_path, tie):
  hf, folder = hf_gpt2(tmp_path, tie=tie)
  save_pretrained(from_pretrained(folder), tmp_path / "back")
  again = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "back").eval()
  ids = tokens()
  np.testing.assert_allclose(hf_logits(again, ids), hf_logits(hf, ids), atol=1e-6, rtol=0)


def rewrite_config(folder, **changes):
  path = folder / "config.json"
  path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_tensors_unused_missing_or_misshapen_are_refused(tmp_path):
  from safetensors.numpy import load_file, save_file

  _, folder = hf_gpt2(tmp_path)
  weights = folder / "model.safetensors"
  original = load_file(weights)
  save_file({**original, "transformer.extra.weight": np.zeros(3, np.float32)}, weights)
  with pytest.raises(ValueError, match=r"tensors \['transformer.extra.weight'\] map to no parameter of GPT"):
    from_pretrained(folder)
  save_file({k: v for k, v in original.items() if k != "transformer.ln_f.bias"}, weights)
  with pytest.raises(ValueError, match=re.escape("the checkpoint lacks tensor 'transformer.ln_f.bias'")):
    from_pretrained(folder)
  save_file({**original, "transformer.ln_f.bias": np.zeros(5, np.float32)}, weights)
  with pytest.raises(ValueError, match=r"stack/final_norm/bias has shape \(5,\), the model expects \(16,\)"):
    from_pretrained(folder)


def test_folders_without_config_or_safetensors_are_refused(tmp_path):
  with pytest.raises(ValueError, match=re.escape("path must be a Hugging Face model folder holding config.json")):
    from_pretrained(tmp_path)
  (tmp_path / "config.json").write_text("{}")
  (tmp_path / "pytorch_model.bin").write_bytes(b"")
  with pytest.raises(ValueError, match=re.escape("pytorch_model.bin is not read")):
    from_pretrained(tmp_path)


def test_models_without_a_hugging_face_layout_are_refused(tmp_path):
  rope = GPT(GPTConfig(vocab_size=8, max_length=8, dim=8, num_heads=2, num_layers=1, ff_dim=8, position="rope"),
             rngs=nnx.Rngs(0))  # fmt: skip
  with pytest.raises(ValueError, match="GPT-2 has learned positions; this GPT has position='rope'"):
    save_pretrained(rope, tmp_path)
  with pytest.raises(ValueError, match="model: Linear has no Hugging Face layout here"):
    save_pretrained(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), tmp_path)


def test_layer_norm_uses_pytorchs_two_pass_variance_at_large_offsets():
  x = 100.0 + np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)  # mean 100, spread 1
  ours = np.asarray(layer_norm(64, epsilon=1e-5, rngs=nnx.Rngs(0))(jnp.asarray(x)))
  theirs = torch.nn.functional.layer_norm(torch.tensor(x), (64,), eps=1e-5).numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
  fast = np.asarray(nnx.LayerNorm(64, epsilon=1e-5, rngs=nnx.Rngs(0))(jnp.asarray(x)))
  assert np.abs(fast - theirs).max() > 1e-3  # what the two-pass variance avoids


def hf_bert(tmp_path):
  config = transformers.BertConfig(
    vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
    max_position_embeddings=16,
  )  # fmt: skip
  model = redraw_torch(transformers.BertForPreTraining(config), seed=1)
  folder = tmp_path / "hf"
  model.save_pretrained(folder)
  return model, folder


def bert_inputs():
  ids = tokens(3, 10)
  types = (np.arange(10)[None] >= np.array([[5], [3], [7]])).astype(np.int64)  # [B, T] second segment
  mask = np.arange(10)[None] < np.array([[10], [6], [8]])  # [B, T] real tokens; rows 2 and 3 padded
  return ids, types, mask


def test_bert_masked_lm_and_next_sentence_logits_match_transformers_with_padding(tmp_path):
  hf, folder = hf_bert(tmp_path)
  ours = from_pretrained(folder)
  ids, types, mask = bert_inputs()
  with torch.no_grad():
    out = hf(torch.tensor(ids), token_type_ids=torch.tensor(types), attention_mask=torch.tensor(mask.astype(np.int64)))
  mlm, nsp = forward(
    ours, jnp.asarray(ids, jnp.int32), token_types=jnp.asarray(types, jnp.int32), attention_mask=jnp.asarray(mask)
  )
  real = mask[..., None]  # padded positions' outputs are not compared: transformers computes them, seqjax too
  np.testing.assert_allclose(np.where(real, np.asarray(mlm), 0), np.where(real, out.prediction_logits.numpy(), 0),
                             atol=1e-4, rtol=0)  # fmt: skip
  np.testing.assert_allclose(np.asarray(nsp), out.seq_relationship_logits.numpy(), atol=1e-4, rtol=0)


def test_bert_saves_into_transformers_with_the_same_logits(tmp_path):
  hf, folder = hf_bert(tmp_path)
  save_pretrained(from_pretrained(folder), tmp_path / "back")
  again = transformers.BertForPreTraining.from_pretrained(tmp_path / "back").eval()
  ids, types, mask = bert_inputs()
  inputs = {"token_type_ids": torch.tensor(types), "attention_mask": torch.tensor(mask.astype(np.int64))}
  with torch.no_grad():
    want, got = hf(torch.tensor(ids), **inputs), again(torch.tensor(ids), **inputs)
  np.testing.assert_allclose(got.prediction_logits.numpy(), want.prediction_logits.numpy(), atol=1e-6, rtol=0)
  np.testing.assert_allclose(got.seq_relationship_logits.numpy(), want.seq_relationship_logits.numpy(), atol=1e-6)


@pytest.mark.parametrize(
  "family,changes,message",
  [
    (
      "gpt2",
      {"model_type": "llama"},
      "model_type 'llama' is not supported; supported: \\['gpt2', 'bert', 'vit', 't5'\\]",
    ),
    ("gpt2", {"activation_function": "silu"}, "activation_function 'silu' is not supported"),
    ("gpt2", {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True is not supported"),
    ("gpt2", {"attn_pdrop": 0.0}, "resid_pdrop, embd_pdrop and attn_pdrop must be equal"),
    ("bert", {"hidden_act": "relu"}, "hidden_act='relu' is not supported"),
    ("bert", {"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key' is not supported"),
    (
      "bert",
      {"attention_probs_dropout_prob": 0.0},
      "hidden_dropout_prob and attention_probs_dropout_prob must be equal",
    ),
  ],
)
def test_config_options_seqjax_cannot_express_are_refused(tmp_path, family, changes, message):
  _, folder = {"gpt2": hf_gpt2, "bert": hf_bert, "vit": hf_vit}[family](tmp_path)
  rewrite_config(folder, **changes)
  with pytest.raises(ValueError, match=message):
    from_pretrained(folder)


def test_a_tied_tensor_that_differs_from_its_twin_is_refused(tmp_path):
  from safetensors.numpy import load_file, save_file

  _, folder = hf_bert(tmp_path)
  weights = folder / "model.safetensors"
  save_file({**load_file(weights), "cls.predictions.decoder.bias": np.ones(VOCAB, np.float32)}, weights)
  with pytest.raises(ValueError, match=r"'cls.predictions.decoder.bias' differs from the parameter it is tied to"):
    from_pretrained(folder)


V4_NAMES = {  # transformers 4.x names of a ViT block's tensors, by their 5.x names
  "attention.q_proj": "attention.attention.query",
  "attention.k_proj": "attention.attention.key",
  "attention.v_proj": "attention.attention.value",
  "attention.o_proj": "attention.output.dense",
  "mlp.fc1": "intermediate.dense",
  "mlp.fc2": "output.dense",
  "layernorm_before": "layernorm_before",
  "layernorm_after": "layernorm_after",
}


def hf_vit(tmp_path):
  config = transformers.ViTConfig(
    image_size=8, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=32, num_labels=5,
  )  # fmt: skip
  model = redraw_torch(transformers.ViTForImageClassification(config), seed=2)
  folder = tmp_path / "hf"
  model.save_pretrained(folder)
  return model, folder


def vit_logits(hf, ours, images_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  with torch.no_grad():
    theirs = hf(torch.tensor(images_nhwc.transpose(0, 3, 1, 2))).logits.numpy()  # NHWC -> NCHW
  return np.asarray(forward(ours, jnp.asarray(images_nhwc))), theirs


def test_vit_logits_match_transformers_from_5x_and_4x_names(tmp_path):
  from safetensors.numpy import load_file, save_file

  hf, folder = hf_vit(tmp_path)
  images = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)  # [B, H, W, C]
  mine, theirs = vit_logits(hf, from_pretrained(folder), images)
  np.testing.assert_allclose(mine, theirs, atol=1e-4, rtol=0)
  weights = folder / "model.safetensors"
  v4 = {}
  for name, value in load_file(weights).items():
    for new, old in V4_NAMES.items():
      name = re.sub(rf"^vit\.layers\.(\d+)\.{re.escape(new)}\.", rf"vit.encoder.layer.\1.{old}.", name)
    v4[name] = value
  assert any(name.startswith("vit.encoder.layer.0.attention.attention.query") for name in v4)
  save_file(v4, weights)
  mine, theirs = vit_logits(hf, from_pretrained(folder), images)
  np.testing.assert_allclose(mine, theirs, atol=1e-4, rtol=0)


def test_vit_saves_into_transformers_with_the_same_logits(tmp_path):
  hf, folder = hf_vit(tmp_path)
  save_pretrained(from_pretrained(folder), tmp_path / "back")
  again = transformers.ViTForImageClassification.from_pretrained(tmp_path / "back").eval()
  pixels = torch.tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32))  # NCHW
  with torch.no_grad():
    np.testing.assert_allclose(again(pixels).logits.numpy(), hf(pixels).logits.numpy(), atol=1e-6, rtol=0)


def hf_t5(tmp_path, version: str = "1.0", d_kv: int = 4):
  config = transformers.T5Config(
    vocab_size=VOCAB, d_model=16, d_kv=d_kv, d_ff=32, num_layers=2, num_decoder_layers=2, num_heads=4,
    relative_attention_num_buckets=8, relative_attention_max_distance=20,
    feed_forward_proj="relu" if version == "1.0" else "gated-gelu", tie_word_embeddings=version == "1.0",
  )  # fmt: skip
  model = redraw_torch(transformers.T5ForConditionalGeneration(config), seed=3)
  folder = tmp_path / "hf"
  model.save_pretrained(folder)
  return model, folder


def t5_inputs():
  rng = np.random.default_rng(0)
  src, tgt = rng.integers(2, VOCAB, (2, 9)), rng.integers(2, VOCAB, (2, 7))
  return src, tgt, np.arange(9)[None] < np.array([[9], [6]])  # src_mask [B, S]: the second row padded


def t5_logits(model, src, tgt, mask) -> np.ndarray:
  return np.asarray(
    forward(model, jnp.asarray(src, jnp.int32), jnp.asarray(tgt, jnp.int32), src_mask=jnp.asarray(mask))
  )


@pytest.mark.parametrize("version,d_kv", [("1.0", 4), ("1.1", 4), ("1.1", 16)], ids=["1.0", "1.1", "heads-wider"])
def test_t5_teacher_forced_logits_match_transformers(tmp_path, version, d_kv):
  hf, folder = hf_t5(tmp_path, version, d_kv)  # d_kv 16: 4 heads x 16 = 64 != d_model 16, as T5-3B/11B
  ours = from_pretrained(folder)
  assert ours.config.head_dim == (None if d_kv == 4 else d_kv)
  assert ours.config.gated_feed_forward == (version == "1.1") and ours.config.scale_decoder_output == (version == "1.0")
  src, tgt, mask = t5_inputs()
  with torch.no_grad():
    theirs = hf(
      input_ids=torch.tensor(src),
      attention_mask=torch.tensor(mask.astype(np.int64)),
      decoder_input_ids=torch.tensor(tgt),
    ).logits.numpy()
  np.testing.assert_allclose(t5_logits(ours, src, tgt, mask), theirs, atol=1e-4, rtol=0)


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_t5_greedy_generation_equals_transformers_generate(tmp_path, version):
  hf, folder = hf_t5(tmp_path, version)
  ours = from_pretrained(folder)
  src, _, mask = t5_inputs()
  with torch.no_grad():
    theirs = hf.generate(
      input_ids=torch.tensor(src), attention_mask=torch.tensor(mask.astype(np.int64)), max_new_tokens=6,
      min_new_tokens=6, do_sample=False, decoder_start_token_id=0,
    ).numpy()[:, 1:]  # fmt: skip
  start = jnp.zeros((2, 1), jnp.int32)  # T5's decoder starts from the pad id, 0
  source = {"src": jnp.asarray(src, jnp.int32), "src_mask": jnp.asarray(mask)}
  mine, _ = decoding.greedy(
    ours, start, max_new_tokens=6, suppress=(1,), **source
  )  # EOS (1) held off as min_new_tokens
  np.testing.assert_array_equal(np.asarray(mine), theirs)


def test_t5_with_its_own_output_layer_as_transformers_4_wrote_v1_1(tmp_path):
  """transformers 4.x saved v1.1 with tie_word_embeddings false and an lm_head of its own (5.x ties
  every T5, so the logits here are the decoder's output times that head, computed from the parts)."""
  from safetensors.numpy import load_file, save_file

  hf, folder = hf_t5(tmp_path, "1.1")
  head = np.random.default_rng(5).standard_normal((VOCAB, 16)).astype(np.float32)  # [V, D]
  save_file({**load_file(folder / "model.safetensors"), "lm_head.weight": head}, folder / "model.safetensors")
  config = json.loads((folder / "config.json").read_text())
  config.pop("scale_decoder_outputs")
  (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": False}))
  ours = from_pretrained(folder)
  assert ours.config.separate_head and not ours.config.scale_decoder_output
  src, tgt, mask = t5_inputs()
  with torch.no_grad():
    memory = hf.get_encoder()(input_ids=torch.tensor(src), attention_mask=torch.tensor(mask.astype(np.int64)))
    decoded = hf.get_decoder()(
      input_ids=torch.tensor(tgt), encoder_hidden_states=memory.last_hidden_state,
      encoder_attention_mask=torch.tensor(mask.astype(np.int64)),
    ).last_hidden_state.numpy()  # fmt: skip
  np.testing.assert_allclose(t5_logits(ours, src, tgt, mask), decoded @ head.T, atol=1e-4, rtol=0)
  save_pretrained(ours, tmp_path / "back")
  np.testing.assert_array_equal(load_file(tmp_path / "back" / "model.safetensors")["lm_head.weight"], head)


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_t5_saves_into_transformers_with_the_same_logits(tmp_path, version):
  hf, folder = hf_t5(tmp_path, version)
  save_pretrained(from_pretrained(folder), tmp_path / "back")
  again = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "back").eval()
  src, tgt, mask = t5_inputs()
  inputs = {"input_ids": torch.tensor(src), "attention_mask": torch.tensor(mask.astype(np.int64)),
            "decoder_input_ids": torch.tensor(tgt)}  # fmt: skip
  with torch.no_grad():
    np.testing.assert_allclose(again(**inputs).logits.numpy(), hf(**inputs).logits.numpy(), atol=1e-6, rtol=0)


def test_encoder_decoders_that_are_not_t5_are_refused(tmp_path):
  from seqjax.transformer import EncoderDecoder, EncoderDecoderConfig

  vanilla = EncoderDecoder(EncoderDecoderConfig(vocab_size=8, dim=8, num_heads=2, ff_dim=8, num_encoder_layers=1,
                                                num_decoder_layers=1), rngs=nnx.Rngs(0))  # fmt: skip
  with pytest.raises(ValueError, match="model: this EncoderDecoder is not a T5"):
    save_pretrained(vanilla, tmp_path)


def test_wordpiece_takes_the_longest_pieces_and_falls_back_to_unk():
  from seqjax.data.wordpiece import WordPiece

  wordpiece = WordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "fish", "##ing", "##in", "bank", "b"])
  assert wordpiece.word("Fishing") == [4, 5]  # lowercased; "##ing" is longer than "##in"
  assert wordpiece.word("bankz") == [1]  # no split covers it
  assert wordpiece.sentence(["bank", "fishing", "b"]) == ([2, 7, 4, 5, 8, 3], [1, 2, 4])
  with pytest.raises(ValueError, match=r"the vocabulary lacks \[UNK\]"):
    WordPiece(["[PAD]", "[CLS]", "[SEP]"])


def test_contextual_embeddings_probes_a_pretrained_bert_folder(tmp_path, capsys):
  from experiments import contextual_embeddings as experiment

  pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "bank", "##ing", *experiment.FINANCE, *experiment.RIVER,
            *experiment.FILLERS]  # fmt: skip
  config = transformers.BertConfig(
    vocab_size=len(pieces), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=32,
  )  # fmt: skip
  folder = tmp_path / "bert"
  redraw_torch(transformers.BertForPreTraining(config), seed=4).save_pretrained(folder)
  (folder / "vocab.txt").write_text("\n".join(pieces) + "\n")
  experiment.main(["smoke", "--pretrained", str(folder), "--out", str(tmp_path / "out")])
  data = json.loads((tmp_path / "out" / "contextual_embeddings_pretrained.json").read_text())
  scores = data["runs"][0]["representations"]
  assert set(scores) == {"static (input embedding table)", "pretrained BERT, last layer"}
  assert scores["static (input embedding table)"]["cosine_same_sense"] == pytest.approx(1.0)  # one vector, always
  assert 0.0 <= scores["pretrained BERT, last layer"]["accuracy"] <= 1.0
  with pytest.raises(ValueError, match="must be a BERT folder"):
    _, gpt = hf_gpt2(tmp_path / "gpt")
    (gpt / "vocab.txt").write_text("\n".join(pieces))
    experiment.main(["smoke", "--pretrained", str(gpt), "--out", str(tmp_path / "out")])
