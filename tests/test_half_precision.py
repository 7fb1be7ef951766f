"""float16 and ml_dtypes.bfloat16 (issue 10, "Half precision"; docs/rng.md).

The rule: the mask of float32 for the same seed, offset and p; a kept element is exactly
``(x.astype(float32) * float32(1 / (1 - p))).astype(dtype)`` (product in float32, the store
rounded to nearest even as NumPy's and ml_dtypes' astype do it, NaN included); a dropped one is
+0.0.  Compared bit for bit with tests/reference.py on every kernel path, layout and mode, and
with the float32 kernels' own output narrowed by NumPy.  bfloat16 tests skip without ml_dtypes;
float16 must work without it, and `import cdrop` never imports it.
"""
import zlib

import numpy as np
import pytest

import cdrop
import reference
from helpers import assert_bits_equal, bits, run_python

try:
    import ml_dtypes
except ImportError:  # optional: the bfloat16 cases skip
    ml_dtypes = None

BLOCK = cdrop._kernels.BLOCK
SEED = 20261129
HALF = [
    pytest.param(np.dtype(np.float16), id="float16"),
    pytest.param(np.dtype(ml_dtypes.bfloat16) if ml_dtypes else None, id="bfloat16",
                 marks=pytest.mark.skipif(ml_dtypes is None, reason="needs ml_dtypes")),
]
# 0.5: the exact path (no ties in the keep test); 0.3, 0.1: the tie-settling path; 1 / 3 makes
# the float32 scale 1.5, whose products are often exact rounding ties; 1e-9: scale 1.0f; 0.999:
# products that overflow the half dtypes.
PS = [0.5, 0.1, 0.3, 1 / 3, 1e-9, 0.999]
SHAPES = [(), (1,), (7,), (63,), (65,), (BLOCK - 1,), (BLOCK + 1,), (2 * BLOCK + 100,),
          (3, 700), (2, 3, 4, 5)]
LAYOUTS = {
    "C": lambda a: a,
    "F": lambda a: np.asfortranarray(a),
    "step2": lambda a: a[::2],
    "reversed": lambda a: a[::-1],
    "transpose": lambda a: a.T,
    "cols1::3": lambda a: a[:, 1::3] if a.ndim >= 2 else a[1::3],
}


def _layouts_for(shape):
    if not shape:
        return ["C"]
    return ["C", "step2", "reversed", "cols1::3"] + (["F", "transpose"] if len(shape) >= 2 else [])


def _data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray((rng.standard_normal(shape) * 3).astype(np.float32)).astype(dtype)


def _rule(x, p, seed, offset=0):
    """The rule written out from float32 cdrop: its output, narrowed by NumPy / ml_dtypes."""
    with np.errstate(over="ignore", invalid="ignore"):
        return cdrop.dropout(x.astype(np.float32), p, seed=seed, offset=offset).astype(x.dtype)


# ---------------------------------------------------------------------------------------------
# Values: every mode, layout and kernel path
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("shape,layout", [
    pytest.param(s, lay, id=f"{'x'.join(map(str, s)) or '0d'}-{lay}")
    for s in SHAPES for lay in _layouts_for(s)])
def test_half_matches_the_rule_in_every_mode(shape, layout, dtype, p, kernel_path):
    parent = _data(shape, dtype, zlib.crc32(f"{shape}{layout}".encode()))
    x = LAYOUTS[layout](parent)
    x_before = x.copy()
    expected = reference.dropout_ref(x, p, SEED, offset=3)
    assert_bits_equal(expected, _rule(x, p, SEED, offset=3), "oracle vs float32 cdrop narrowed")

    y = cdrop.dropout(x, p, seed=SEED, offset=3)
    assert y.dtype == dtype and y.shape == x.shape
    assert_bits_equal(y, expected, "out of place")
    assert_bits_equal(x, x_before, "out of place changed x")

    out = np.full(x.shape, 7, dtype=dtype)
    assert cdrop.dropout(x, p, seed=SEED, offset=3, out=out) is out
    assert_bits_equal(out, expected, "out=")

    x2 = x.copy(order="K") if layout in ("C", "F") else LAYOUTS[layout](parent.copy())
    assert cdrop.dropout(x2, p, seed=SEED, offset=3, inplace=True) is x2
    assert_bits_equal(x2, expected, "in place")


@pytest.mark.parametrize("dtype", HALF)
def test_half_non_contiguous_3d_view_and_threads(dtype, kernel_path):
    parent = _data((40, 30, 50), dtype, 5)
    x = parent[1::2, ::-1, 3:47:3].transpose(1, 2, 0)
    expected = reference.dropout_ref(x, 0.3, 77, offset=5)
    for nt in (1, 2):
        assert_bits_equal(cdrop.dropout(x, 0.3, seed=77, offset=5, num_threads=nt), expected)
    big = _data(5 * BLOCK + 17, dtype, 6)  # above the size from which calls use threads
    one = cdrop.dropout(big, 0.3, seed=9, num_threads=1)
    assert_bits_equal(one, reference.dropout_ref(big, 0.3, 9))
    assert_bits_equal(cdrop.dropout(big, 0.3, seed=9, num_threads=2), one, "2 threads")
    two = big.copy()
    cdrop.dropout(two, 0.3, seed=9, num_threads=2, inplace=True)
    assert_bits_equal(two, one, "2 threads in place")


@pytest.mark.parametrize("dtype", HALF)
def test_half_misaligned_arrays(dtype, kernel_path):
    n = BLOCK + 33

    def misaligned():
        a = np.frombuffer(bytearray(2 * n + 1), dtype=np.uint8)[1:].view(dtype)
        assert not a.flags.aligned
        return a

    x = misaligned()
    x[...] = _data(n, dtype, 3)
    expected = reference.dropout_ref(x, 0.3, 123)
    assert_bits_equal(cdrop.dropout(x, 0.3, seed=123), expected, "out of place")
    out = misaligned()
    cdrop.dropout(x, 0.3, seed=123, out=out)
    assert_bits_equal(out, expected, "misaligned out=")
    cdrop.dropout(x, 0.3, seed=123, inplace=True)
    assert_bits_equal(x, expected, "in place")


# ---------------------------------------------------------------------------------------------
# Special values: every 16-bit pattern
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.5, 0.3, 1 / 3, 1e-9, 0.999])
@pytest.mark.parametrize("dtype", HALF)
def test_every_bit_pattern_follows_the_rule(dtype, p, kernel_path):
    # +-0, +-Inf, NaN with every payload and both signs, subnormals, the largest finite values
    # (whose products overflow), and with scale 1.5 (p = 1/3) exact rounding ties
    x = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    expected = reference.dropout_ref(x, p, SEED)
    for mode in ("out", "inplace", "strided"):
        if mode == "strided":
            parent = np.zeros(2 * x.size, dtype=dtype)
            parent[::2] = x
            src = parent[::2]
        else:
            src = x.copy()
        y = cdrop.dropout(src, p, seed=SEED, inplace=mode == "inplace")
        assert_bits_equal(y, expected, mode)
    keep = reference.keep_mask(x.size, p, SEED)
    assert not bits(y[~keep]).any(), "a dropped element is not +0.0"


@pytest.mark.parametrize("dtype", HALF)
def test_rounding_ties_go_to_even(dtype):
    # p = 1/3: the float32 scale is exactly 1.5, so x * 1.5 for x with an odd last significand
    # bit lies halfway between two half values; the kernels must pick the even one
    assert np.float32(1 / (1 - 1 / 3)) == np.float32(1.5)
    mant = 10 if dtype == np.float16 else 7
    # x = 1 + k * ulp with k odd and x < 4/3, so that x * 1.5 stays in [1.5, 2)
    odd = np.arange(1, (1 << mant) // 3, 2, dtype=np.uint16)
    x = np.resize(odd | np.uint16(0x3C00 if mant == 10 else 0x3F80), 4096).view(dtype)
    y = cdrop.dropout(x, 1 / 3, seed=4)
    kept = bits(y) != 0
    prod = x.astype(np.float32)[kept] * np.float32(1.5)
    # every kept product is a tie: its float32 bits below the half significand are 100...0
    low = 23 - mant
    tie_bits = bits(prod) & np.uint32((1 << low) - 1)
    assert kept.sum() > 1000 and np.all(tie_bits == np.uint32(1 << (low - 1)))
    assert np.all(bits(y)[kept] & 1 == 0), "a tie was not rounded to an even significand"
    assert_bits_equal(y, reference.dropout_ref(x, 1 / 3, 4))


@pytest.mark.parametrize("dtype", HALF)
def test_half_nan_conversion_matches_numpy_and_ml_dtypes(dtype):
    # float16 keeps NaN payloads (NumPy), bfloat16 makes them 0x7FC0 with the sign (ml_dtypes)
    if dtype == np.float16:
        src = np.array([0x7E01, 0xFD23, 0x7C01, 0xFFFF], dtype=np.uint16)
        want = np.array([0x7E01, 0xFF23, 0x7E01, 0xFFFF], dtype=np.uint16)
    else:
        src = np.array([0x7FC1, 0xFF81, 0x7F81, 0xFFFF], dtype=np.uint16)
        want = np.array([0x7FC0, 0xFFC0, 0x7FC0, 0xFFC0], dtype=np.uint16)
    x = np.resize(src, 64).view(dtype)
    y = cdrop.dropout(x, 0.3, seed=1)
    kept = reference.keep_mask(64, 0.3, 1)
    assert kept.any()
    assert np.array_equal(bits(y)[kept], np.resize(want, 64)[kept])


# ---------------------------------------------------------------------------------------------
# The mask is float32's; the layer
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", HALF)
def test_half_mask_is_the_float32_mask(dtype, p):
    x = np.ones(3 * BLOCK + 5, dtype=dtype)
    m32 = cdrop.dropout(np.ones(x.size, np.float32), p, seed=21, offset=9) != 0
    assert np.array_equal(bits(cdrop.dropout(x, p, seed=21, offset=9)) != 0, m32)
    assert np.array_equal(m32, cdrop.dropout_mask(x.size, p, seed=21, offset=9))


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("dtype", HALF)
def test_half_dropout_layer_forward_and_backward(dtype, inplace):
    layer = cdrop.Dropout(0.3, seed=31, inplace=inplace)
    x = _data((64, 300), dtype, 8)
    x_in = x.copy()
    y = layer(x_in)
    call_seed = reference.derive(31, 0)
    assert_bits_equal(y, reference.dropout_ref(x, 0.3, call_seed))
    assert (y is x_in) == inplace
    g = _data((64, 300), dtype, 9)
    assert_bits_equal(layer.backward(g), reference.dropout_ref(g, 0.3, call_seed), "backward")
    layer.eval()
    assert layer(x) is x and layer.backward(g) is g


def test_bfloat16_out_must_match_dtype():
    pytest.importorskip("ml_dtypes")
    x = np.ones(10, ml_dtypes.bfloat16)
    with pytest.raises(TypeError, match="out has dtype float16, but x has dtype bfloat16"):
        cdrop.dropout(x, 0.5, seed=1, out=np.zeros(10, np.float16))


def test_p0_and_p1_in_half_precision():
    x = np.array([np.nan, -0.0, 1.0, 65504.0], dtype=np.float16)
    assert_bits_equal(cdrop.dropout(x, 0.0, seed=1), x)
    assert not bits(cdrop.dropout(x, 1.0, seed=1)).any()
    if ml_dtypes is not None:
        xb = x.astype(ml_dtypes.bfloat16)
        assert not bits(cdrop.dropout(xb, 1.0, seed=1)).any()


def test_non_native_float16_says_how_to_convert():
    with pytest.raises(TypeError, match=r"non-native byte order.*astype\('float16'\)"):
        cdrop.dropout(np.ones(4, ">f2"), 0.5, seed=1)


def test_unsupported_dtype_message_lists_the_half_dtypes():
    with pytest.raises(TypeError, match=r"float16, bfloat16 \(ml_dtypes\), float32 and float64"):
        cdrop.dropout(np.ones(4, np.int32), 0.5, seed=1)


def test_kernel_contract_bf16_takes_any_2_byte_view():
    # cdrop.torch passes uint16/int16/float16 views of bfloat16 memory with bf16=True
    pytest.importorskip("ml_dtypes")
    x = _data(1000, ml_dtypes.bfloat16, 2)
    expected = reference.dropout_ref(x, 0.3, 5, offset=7)
    for view in (np.uint16, np.int16, np.float16):
        out = np.empty(1000, np.uint16)
        assert cdrop._kernels.apply(x.view(view), out.view(view), 5, 7, 0.3, 1, bf16=True)
        assert np.array_equal(out, bits(expected))
    f16 = _data(1000, np.float16, 2)
    out = np.empty(1000, np.uint16)
    assert cdrop._kernels.apply(f16.view(np.uint16), out, 5, 7, 0.3, 1)  # bf16=False: float16
    assert np.array_equal(out, bits(reference.dropout_ref(f16, 0.3, 5, offset=7)))


# ---------------------------------------------------------------------------------------------
# ml_dtypes is optional
# ---------------------------------------------------------------------------------------------
def test_import_cdrop_does_not_import_ml_dtypes(tmp_path):
    run_python("""
        import sys
        import numpy as np
        import cdrop
        cdrop.dropout(np.ones(100, np.float16), 0.5, seed=1)
        cdrop.Dropout(0.5, seed=1)(np.ones(100, np.float16))
        assert "ml_dtypes" not in sys.modules, "import cdrop imported ml_dtypes"
    """, tmp_path, check=True)


def test_float16_works_without_ml_dtypes(tmp_path):
    run_python("""
        import sys
        sys.modules["ml_dtypes"] = None  # import ml_dtypes now raises ImportError
        import numpy as np
        import cdrop
        x = np.arange(1, 65, dtype=np.float16)
        y = cdrop.dropout(x, 0.5, seed=3)
        want = cdrop.dropout(x.astype(np.float32), 0.5, seed=3).astype(np.float16)
        assert (y.view(np.uint16) == want.view(np.uint16)).all()
        layer = cdrop.Dropout(0.5, seed=1)
        layer(x)
        layer.backward(np.ones_like(x))
        try:
            cdrop.dropout(np.ones(4, np.int32), 0.5, seed=1)
        except TypeError as exc:
            assert "bfloat16 (ml_dtypes)" in str(exc)
    """, tmp_path, check=True)
