"""The Examples sections of the public docstrings run and say what the code does."""
import doctest

import pytest

import cdrop
from cdrop import _dropout, _layer, _seed, _threads, _variants

MODULES = [cdrop, _dropout, _layer, _seed, _threads, _variants]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    try:
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        result = doctest.testmod(module, optionflags=flags)
    finally:
        cdrop.set_num_threads(None)
    assert result.failed == 0


def test_every_public_name_has_examples():
    missing = [name for name in cdrop.__all__ if name != "__version__"
               and "Examples" not in (getattr(cdrop, name).__doc__ or "")]
    assert missing == []


def test_readme_usage_runs():
    """The README's Python examples run as written (the README must stay true to the code)."""
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parent.parent / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    assert blocks, "README.md has no Python example"
    for code in blocks:
        exec(compile(code, str(readme), "exec"), {})
