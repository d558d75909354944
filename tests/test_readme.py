"""The Python examples of the README and of docs/ run as written."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [
  (page.relative_to(REPO), index, block)
  for page in PAGES
  for index, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL))
]


def test_the_readme_stays_a_front_page():
  assert len((REPO / "README.md").read_text().splitlines()) <= 250


def test_every_page_has_examples_that_are_collected():
  assert {str(page) for page, _, _ in BLOCKS} >= {"README.md", "docs/recurrent.md", "docs/attention.md"}


@pytest.mark.parametrize("page,index,block", BLOCKS, ids=[f"{page}:{index}" for page, index, _ in BLOCKS])
def test_example_runs(page, index, block):
  if "torch" in block:
    pytest.importorskip("torch")
  exec(compile(block, f"{page} python block {index}", "exec"), {})
