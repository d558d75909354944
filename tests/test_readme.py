"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
  if "torch" in BLOCKS[index]:
    pytest.importorskip("torch")
  exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {})
