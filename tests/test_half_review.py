"""Half precision seen from outside (issue 10 review): inputs that look like the half dtypes but
are not, and what the documented rule (docs/rng.md, "Half precision") promises at its edges.

Each test here failed on the code before its fix.
"""
import numpy as np
import pytest

import cdrop
from helpers import run_python

try:
    import ml_dtypes
except ImportError:  # optional: the bfloat16 cases skip
    ml_dtypes = None

needs_ml_dtypes = pytest.mark.skipif(ml_dtypes is None, reason="needs ml_dtypes")


# ---------------------------------------------------------------------------------------------
# Only ml_dtypes.bfloat16 is bfloat16
# ---------------------------------------------------------------------------------------------
def _lookalike(module, structured):
    """A 2-byte dtype that NumPy names "bfloat16": a numpy.void subclass called ``bfloat``."""
    bfloat = type("bfloat", (np.void,), {"__module__": module})
    dtype = np.dtype((bfloat, [("a", "u1"), ("b", "u1")] if structured else 2))
    assert dtype.name == "bfloat16" and dtype.kind == "V" and dtype.itemsize == 2
    return dtype


@pytest.mark.parametrize("structured", [False, True], ids=["void", "structured"])
@pytest.mark.parametrize("module", ["ml_dtypes", "ml_dtypes_fake", "fake.ml_dtypes"])
def test_lookalike_bfloat16_dtypes_are_refused(module, structured):
    # Two bytes named bfloat16 are not bfloat16 values: dropout must not scale their bits
    dtype = _lookalike(module, structured)
    x = np.frombuffer(np.full(64, 0x3F80, np.uint16).tobytes(), dtype=dtype).copy()
    before = x.tobytes()
    with pytest.raises(TypeError, match=r"^x has unsupported dtype"):
        cdrop.dropout(x, 0.5, seed=1)
    with pytest.raises(TypeError, match=r"^x has unsupported dtype"):
        cdrop.dropout(x, 0.5, seed=1, inplace=True)
    with pytest.raises(TypeError, match=r"^x has unsupported dtype"):
        cdrop.Dropout(0.5, seed=1)(x)
    assert x.tobytes() == before


@needs_ml_dtypes
def test_real_bfloat16_still_accepted_next_to_a_lookalike():
    _lookalike("ml_dtypes", False)
    x = np.ones(64, ml_dtypes.bfloat16)
    y = cdrop.dropout(x, 0.5, seed=1)
    assert y.dtype == x.dtype
    assert set(np.unique(y.view(np.uint16)).tolist()) <= {0, 0x4000}  # 0.0 and 2.0


@needs_ml_dtypes
def test_bfloat16_works_when_ml_dtypes_is_imported_after_cdrop(tmp_path):
    # cdrop looks ml_dtypes up at each call, not once at import
    run_python("""
        import sys
        import numpy as np
        import cdrop
        assert "ml_dtypes" not in sys.modules
        import ml_dtypes
        x = np.full(64, 3.0, ml_dtypes.bfloat16)
        y = cdrop.dropout(x, 0.5, seed=1)
        want = cdrop.dropout(np.full(64, 3.0, np.float32), 0.5, seed=1).astype(x.dtype)
        assert y.dtype == x.dtype and (y.view(np.uint16) == want.view(np.uint16)).all()
    """, tmp_path, check=True)


@needs_ml_dtypes
def test_byte_swapped_bfloat16_says_how_to_convert():
    # as for '>f2': name the byte order, and give a conversion that works
    bf = np.dtype(ml_dtypes.bfloat16)
    x = np.array([1.5, -2.0, 3.0, 0.25], np.float32).astype(bf).astype(bf.newbyteorder("S"))
    assert not x.dtype.isnative and x.dtype.type is ml_dtypes.bfloat16
    for call in (lambda: cdrop.dropout(x, 0.5, seed=1),
                 lambda: cdrop.Dropout(0.5, seed=1)(x)):
        with pytest.raises(TypeError, match=r"^x has non-native byte order") as info:
            call()
        fix = str(info.value).split("convert it with ")[1].split(" first")[0]
        assert fix == "x.astype('bfloat16')"
    converted = x.astype("bfloat16")
    assert converted.dtype == bf
    assert np.array_equal(cdrop.dropout(converted, 0.5, seed=1).view(np.uint16),
                          cdrop.dropout(x.astype(bf), 0.5, seed=1).view(np.uint16))
