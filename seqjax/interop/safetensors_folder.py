"""A Hugging Face model folder on disk: config.json beside model.safetensors, or beside shards named by
model.safetensors.index.json. Read and written with NumPy alone (no torch).

What a folder may hold is checked before it is used, each refusal a ValueError naming the file:
config.json and the index must be JSON objects; the index's shard names must lie inside the folder
(no absolute path, no `..` or symlink leading out), all checked before any shard is opened; every
safetensors file must be whole; every tensor floating point (FLOAT_DTYPES)."""

import json
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

WEIGHTS, INDEX, CONFIG = "model.safetensors", "model.safetensors.index.json", "config.json"
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # safetensors' names of the tensor dtypes read


def read_folder(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
  """-> (config.json as a dict, every tensor by its name)."""
  folder = Path(path)
  if not (folder / CONFIG).is_file():
    raise ValueError(f"path must be a Hugging Face model folder holding {CONFIG}, got {str(path)!r}")
  config = read_json_object(folder / CONFIG)
  if (folder / WEIGHTS).is_file():
    return config, read_tensors(folder / WEIGHTS)
  if not (folder / INDEX).is_file():
    raise ValueError(
      f"path {str(path)!r} holds neither {WEIGHTS} nor {INDEX} (pytorch_model.bin is not read: convert it to "
      "safetensors with transformers' save_pretrained)"
    )
  tensors = {}
  for shard in shard_files(folder):
    tensors.update(read_tensors(shard))
  return config, tensors


def read_json_object(file: Path) -> dict:
  try:
    value = json.loads(file.read_text(encoding="utf-8"))
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise ValueError(f"{file} is not valid JSON ({error})") from error
  if not isinstance(value, dict):
    raise ValueError(f"{file} must hold a JSON object, got a {type(value).__name__}")
  return value


def shard_files(folder: Path) -> list[Path]:
  """The shard files the index's weight_map names, each checked to lie inside `folder` (symlinks
  followed) before any of them is opened."""
  index = folder / INDEX
  weight_map = read_json_object(index).get("weight_map")
  if not isinstance(weight_map, dict) or not all(isinstance(shard, str) for shard in weight_map.values()):
    raise ValueError(f"{index} must hold 'weight_map', an object mapping tensor names to shard file names")
  inside = folder.resolve()
  files = []
  for shard in sorted(set(weight_map.values())):
    file = (folder / shard).resolve()
    if Path(shard).is_absolute() or not file.is_relative_to(inside):
      raise ValueError(f"{index} names shard {shard!r}, which lies outside the folder {inside}: refused")
    if not file.is_file():
      raise ValueError(f"{index} names shard {shard!r}, which is not a file in {inside}")
    files.append(file)
  return files


def read_tensors(file: Path) -> dict[str, np.ndarray]:
  """Every tensor of one safetensors file, after checking that the file is whole and every tensor
  floating point."""
  try:
    with safe_open(file, framework="np") as reader:
      for name in reader.keys():
        dtype = reader.get_slice(name).get_dtype()
        if dtype not in FLOAT_DTYPES:
          raise ValueError(f"{file}: tensor {name!r} has dtype {dtype}; only {', '.join(FLOAT_DTYPES)} are read")
      return {name: reader.get_tensor(name) for name in reader.keys()}
  except SafetensorError as error:
    raise ValueError(f"{file} is not a whole safetensors file ({error})") from error


def write_folder(path: str | Path, config: dict, tensors: dict[str, np.ndarray]) -> None:
  """One model.safetensors (with transformers' {"format": "pt"} metadata) and config.json."""
  folder = Path(path)
  folder.mkdir(parents=True, exist_ok=True)
  contiguous = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
  save_file(contiguous, folder / WEIGHTS, metadata={"format": "pt"})
  (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
