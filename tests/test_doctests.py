"""Every docstring example in the package runs as written: each module whose source shows a `>>>`
example is found here (README's library section points at them)."""

import doctest
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "radn_cli"


def modules_with_examples() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = modules_with_examples()


def test_the_library_face_and_its_pipeline_are_among_them():
    assert {"radn_cli", "radn_cli.scoring", "radn_cli.pipeline", "radn_cli.images.api"} <= set(MODULES)


@pytest.mark.shipped
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples use examples/ref.png and examples/dist.png
    monkeypatch.delenv("RADN_WEIGHTS", raising=False)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert os.getcwd() == str(ROOT)
