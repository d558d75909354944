"""Figures for the results: matplotlib on the Agg backend (no display), saved as PNG beside the
results files, each readable without the text (labelled axes with units, legend, a title that
states the finding)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def figure(width: float = 7.0, height: float = 4.5, columns: int = 1, rows: int = 1):
  """A new (figure, axes): one axes, a row of `columns` of them, or a grid of rows x columns."""
  return plt.subplots(rows, columns, figsize=(width, height), layout="constrained")


def save(fig, out: str | Path, name: str) -> Path:
  """Writes out/<name>.png (150 dpi), closes the figure, prints and returns the path."""
  path = Path(out) / f"{name}.png"
  fig.savefig(path, dpi=150)
  plt.close(fig)
  print(f"wrote {path}")
  return path
