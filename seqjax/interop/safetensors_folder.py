"""A Hugging Face model folder on disk: config.json beside model.safetensors, or beside shards named by
model.safetensors.index.json. Read and written with NumPy alone (no torch)."""

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

WEIGHTS, INDEX, CONFIG = "model.safetensors", "model.safetensors.index.json", "config.json"


def read_folder(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
  """-> (config.json as a dict, every tensor by its name)."""
  folder = Path(path)
  if not (folder / CONFIG).is_file():
    raise ValueError(f"path must be a Hugging Face model folder holding {CONFIG}, got {str(path)!r}")
  config = json.loads((folder / CONFIG).read_text())
  if (folder / WEIGHTS).is_file():
    return config, load_file(folder / WEIGHTS)
  if not (folder / INDEX).is_file():
    raise ValueError(
      f"path {str(path)!r} holds neither {WEIGHTS} nor {INDEX} (pytorch_model.bin is not read: convert it to "
      "safetensors with transformers' save_pretrained)"
    )
  shards = sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
  tensors = {}
  for shard in shards:
    tensors.update(load_file(folder / shard))
  return config, tensors


def write_folder(path: str | Path, config: dict, tensors: dict[str, np.ndarray]) -> None:
  """One model.safetensors (with transformers' {"format": "pt"} metadata) and config.json."""
  folder = Path(path)
  folder.mkdir(parents=True, exist_ok=True)
  contiguous = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
  save_file(contiguous, folder / WEIGHTS, metadata={"format": "pt"})
  (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
