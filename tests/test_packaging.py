"""pyproject.toml declares every distribution the code imports: the library, harness and experiments
need only `dependencies` (and the test extra where they call peers such as torch), the tests only
`dependencies` and the test extra; requirements.txt pins each runtime dependency."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST_PARTY = {"seqjax", "harness", "experiments", "benchmarks", "tests"}


def normalized(requirement: str) -> str:
  """'orbax-checkpoint>=0.12.8' -> 'orbax-checkpoint' (PEP 503 spelling)."""
  return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def imported_distributions(*folders: str) -> dict[str, set[str]]:
  """distribution -> the files importing it, over every .py file under the folders."""
  distributions = importlib.metadata.packages_distributions()
  found: dict[str, set[str]] = {}
  for folder in folders:
    for file in (REPO / folder).rglob("*.py"):
      for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
          modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
          modules = [node.module]
        else:
          continue
        for module in modules:
          top = module.split(".")[0]
          if top in FIRST_PARTY or top in sys.stdlib_module_names:
            continue
          for distribution in distributions.get(top, [top]):
            found.setdefault(normalized(distribution), set()).add(str(file.relative_to(REPO)))
  return found


def test_every_imported_distribution_is_declared():
  project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
  runtime = {normalized(r) for r in project["dependencies"]}
  test = runtime | {normalized(r) for r in project["optional-dependencies"]["test"]}
  library = imported_distributions("seqjax", "harness", "experiments")
  assert {d: files for d, files in library.items() if d not in test} == {}
  assert {d: files for d, files in imported_distributions("seqjax").items() if d not in runtime} == {}
  assert {d: files for d, files in imported_distributions("tests").items() if d not in test} == {}
  pinned = {normalized(line) for line in (REPO / "requirements.txt").read_text().splitlines() if line[:1].isalpha()}
  assert runtime - pinned == set()
