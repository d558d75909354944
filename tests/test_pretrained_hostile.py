"""Hostile and broken Hugging Face folders: from_pretrained refuses each with a ValueError naming the
file, before using it; a shard name that leads out of the folder is refused before any file is
opened (the kernel's inotify tells whether one was, whichever library opened it)."""

import contextlib
import ctypes
import json
import os
import re
import shutil
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from seqjax.interop import from_pretrained
from tests.helpers import forward
from tests.test_pretrained import hf_bert, hf_gpt2, hf_logits, hf_t5, hf_vit, tokens

torch = pytest.importorskip("torch")

IN_OPEN = 0x20  # inotify's event: the file was opened


@contextlib.contextmanager
def watching_opens(files):
  """Yields a function telling whether any of `files` was opened since (Linux inotify)."""
  libc = ctypes.CDLL(None, use_errno=True)
  fd = libc.inotify_init1(os.O_NONBLOCK)
  assert fd >= 0, os.strerror(ctypes.get_errno())
  try:
    for file in files:
      assert libc.inotify_add_watch(fd, os.fsencode(file), IN_OPEN) >= 0, os.strerror(ctypes.get_errno())

    def opened() -> bool:
      try:
        return len(os.read(fd, 4096)) > 0
      except BlockingIOError:  # no event waiting
        return False

    yield opened
  finally:
    os.close(fd)


def sharded_gpt2(tmp_path):
  """A GPT-2 folder of several shards -> (folder, its index as a dict, its shard files)."""
  _, folder = hf_gpt2(tmp_path, shard="20KB")
  index = json.loads((folder / "model.safetensors.index.json").read_text())
  shards = sorted({folder / name for name in index["weight_map"].values()})
  assert len(shards) > 1
  return folder, index, shards


def rename_shard(folder, index, old: str, new: str) -> None:
  index["weight_map"] = {tensor: new if shard == old else shard for tensor, shard in index["weight_map"].items()}
  (folder / "model.safetensors.index.json").write_text(json.dumps(index))


@pytest.mark.skipif(sys.platform != "linux", reason="watches opens with Linux's inotify")
@pytest.mark.parametrize(
  "how", ["absolute", "dotdot", "dotdot-sorted-last", "symlink", "/etc/passwd", "dotdot-to-/etc/passwd"]
)
def test_shard_names_leading_out_of_the_folder_are_refused_before_any_file_is_opened(tmp_path, how):
  folder, index, shards = sharded_gpt2(tmp_path)
  last = shards[-1]
  outside = tmp_path / "outside.safetensors"  # a valid shard, the one the old code loaded as weights
  shutil.copy(last, outside)
  names = {
    "absolute": str(outside),
    "dotdot": "../outside.safetensors",
    "dotdot-sorted-last": "zzz/../../outside.safetensors",  # named after every shard inside the folder
    "/etc/passwd": "/etc/passwd",
    "dotdot-to-/etc/passwd": "../" * 40 + "etc/passwd",
  }
  if how == "symlink":
    last.unlink()
    last.symlink_to(outside)
  else:
    rename_shard(folder, index, last.name, names[how])
  with watching_opens([outside, *shards[:-1]]) as opened:
    with pytest.raises(ValueError, match=r"names shard '.*', which lies outside the folder .*: refused"):
      from_pretrained(folder)
    assert not opened()
    outside.read_bytes()
    assert opened()  # the watch sees opens


@pytest.mark.parametrize(
  "tensor,dtype", [("transformer.ln_f.weight", "I32"), ("transformer.h.0.attn.c_attn.weight", "U32")]
)
def test_tensors_that_are_not_floating_point_are_refused_by_name(tmp_path, tensor, dtype):
  _, folder = hf_gpt2(tmp_path)
  weights = folder / "model.safetensors"
  data = weights.read_bytes()
  length = int.from_bytes(data[:8], "little")
  header = json.loads(data[8 : 8 + length])
  assert header[tensor]["dtype"] == "F32"
  header[tensor]["dtype"] = dtype  # the same 4 bytes a value, read as integers
  edited = json.dumps(header, separators=(",", ":")).encode()
  weights.write_bytes(data[:8] + edited.ljust(length, b" ") + data[8 + length :])
  message = f"{weights}: tensor '{tensor}' has dtype {dtype}; only F16, BF16, F32, F64 are read"
  with pytest.raises(ValueError, match=re.escape(message)):
    from_pretrained(folder)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_floating_tensors_of_every_width_load(tmp_path, dtype):
  hf, folder = hf_gpt2(tmp_path)
  hf.to(getattr(torch, dtype)).save_pretrained(folder)
  ours = from_pretrained(folder)
  ids = tokens()
  want = hf_logits(hf.float(), ids)  # the checkpoint's values, computed in float32
  np.testing.assert_allclose(np.asarray(forward(ours, jnp.asarray(ids, jnp.int32))), want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("how", ["empty", "truncated", "truncated-shard"])
def test_torn_safetensors_files_are_refused_naming_the_file(tmp_path, how):
  if how == "truncated-shard":
    folder, _, shards = sharded_gpt2(tmp_path)
    weights = shards[0]
  else:
    _, folder = hf_gpt2(tmp_path)
    weights = folder / "model.safetensors"
  weights.write_bytes(b"" if how == "empty" else weights.read_bytes()[:-3])
  with pytest.raises(ValueError, match=re.escape(f"{weights} is not a whole safetensors file")):
    from_pretrained(folder)


@pytest.mark.parametrize(
  "file,text,message",
  [
    ("config.json", "", "is not valid JSON"),
    ("config.json", '{"model_type": "gpt2", ', "is not valid JSON"),
    ("config.json", "[1, 2]", "must hold a JSON object, got a list"),
    ("model.safetensors.index.json", '{"metadata": {}}', "must hold 'weight_map', an object mapping tensor names"),
    ("model.safetensors.index.json", '{"weight_map": ["a"]}', "must hold 'weight_map', an object mapping tensor"),
  ],
)
def test_json_files_that_are_broken_or_not_objects_are_refused_naming_the_file(tmp_path, file, text, message):
  folder, _, _ = sharded_gpt2(tmp_path)
  (folder / file).write_text(text)
  with pytest.raises(ValueError, match=re.escape(f"{folder / file} ") + re.escape(message)):
    from_pretrained(folder)


@pytest.mark.parametrize(
  "family,edit,message",
  [
    ("gpt2", {"n_embd": None}, "config.json lacks 'n_embd'"),
    ("bert", {"hidden_size": None}, "config.json lacks 'hidden_size'"),
    ("gpt2", {"n_embd": "16"}, "config.json: n_embd must be a positive integer, got '16'"),
    ("t5", {"d_kv": "4"}, "config.json: d_kv must be a positive integer, got '4'"),
    ("vit", {"patch_size": "4"}, "config.json: patch_size must be a positive integer, got '4'"),
    ("gpt2", {"n_head": 5}, "config.json gives no valid GPTConfig: dim 16 must be divisible by num_heads 5"),
  ],
  ids=["missing-gpt2", "missing-bert", "string-gpt2", "string-t5", "string-vit", "heads-not-dividing"],
)
def test_config_sizes_missing_or_wrong_are_refused_before_any_reshape(tmp_path, family, edit, message):
  _, folder = {"gpt2": hf_gpt2, "bert": hf_bert, "vit": hf_vit, "t5": hf_t5}[family](tmp_path)
  path = Path(folder) / "config.json"
  config = json.loads(path.read_text())
  for key, value in edit.items():
    if value is None:
      del config[key]
    else:
      config[key] = value
  path.write_text(json.dumps(config))
  with pytest.raises(ValueError, match=re.escape(message)):
    from_pretrained(folder)
