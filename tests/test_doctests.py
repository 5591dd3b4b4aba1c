"""The library's docstring examples run as written (README's library section points at them)."""

import doctest
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["radn_cli", "radn_cli.scoring", "radn_cli.pipeline"]


@pytest.mark.shipped
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples use examples/ref.png and examples/dist.png
    monkeypatch.delenv("RADN_WEIGHTS", raising=False)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert os.getcwd() == str(ROOT)
