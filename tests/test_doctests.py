"""Every docstring example in the package runs as written: each module whose source shows a `>>>`
example is found here (README's library section points at them)."""

import doctest
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "radn_cli"


def modules_with_examples() -> list:
    """Each module with `>>>` examples; those that load the shipped model (``load_scorer``) are heavy."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if ">>>" in source:
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append(pytest.param(name, marks=pytest.mark.heavy) if "load_scorer(" in source else name)
    return found


MODULES = modules_with_examples()


def test_the_library_face_and_its_pipeline_are_among_them():
    names = {getattr(module, "values", (module,))[0] for module in MODULES}
    assert {"radn_cli", "radn_cli.scoring", "radn_cli.pipeline", "radn_cli.images.api"} <= names


@pytest.mark.shipped
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples use examples/ref.png and examples/dist.png
    monkeypatch.delenv("RADN_WEIGHTS", raising=False)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert os.getcwd() == str(ROOT)
