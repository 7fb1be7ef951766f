"""The C-level kernel check (tests/native/check_kernels.c) and its committed digests.

tests/native/digests.txt holds one 64-bit digest per case (kernel, seed, offset, n, p) of every
kernel in cdrop/_src, made on x86.  The C program checks every kernel path of the CPU it runs
on against it, natively here and for aarch64 under qemu (tests/native/run_aarch64.sh, in CI).
This file ties the digests to the contract:

* the program, built with the host C compiler, passes on every path of this CPU, and fails,
  naming the case, when one digest is wrong;
* a sample of the file's cases is recomputed in Python from the same inputs, with the same
  digest, through tests/reference.py (the NumPy oracle of docs/rng.md) and through the
  installed package: so the file cannot drift from the stream that Python users see.

The input generator and the digest below are the twins of ``in_f32`` .. ``in_half`` and
``digest`` in check_kernels.c; keep them in sync.
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cdrop
import reference
from cdrop import _kernels

REPO = Path(__file__).resolve().parent.parent
NATIVE = REPO / "tests" / "native"
DIGESTS = NATIVE / "digests.txt"

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
M64 = (1 << 64) - 1
SALT_X, SALT_R, SALT_B = 1, 2, 3
BIAS_N = 37
ALPHA_C1, ALPHA_C2 = 0.25, -1.7580993408473766

SPECIAL32 = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC12345,
             0xFF800001, 0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x477FE000,
             0x477FF000, 0x7F7F0000, 0x7F7F8000, 0x3F800000, 0xBF800000]
SPECIAL64 = [0, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
             0x7FF8000000000000, 0x7FF8000012345678, 0xFFF0000000000001, 1, 0x000FFFFFFFFFFFFF,
             0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0x3FF0000000000000, 0xBFF0000000000000,
             0x47EFFFFFE0000000]
SPECIAL16 = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7E15, 0xFD01, 0x0001, 0x03FF, 0x0400,
             0x7BFF, 0x7BFE, 0x77FF, 0x7800, 0x3C00, 0xBC00]
SPECIALBF = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7FC5, 0xFF81, 0x0001, 0x007F, 0x0080,
             0x7F7F, 0x7F00, 0x3F80, 0xBF80, 0x477F, 0x4780]


# ---- the twins of check_kernels.c's digest and inputs -------------------------------------
def digest(a):
    """FNV-1a 64 over the little-endian 64-bit words of the bytes (tail zero-padded), then the
    byte length."""
    b = np.ascontiguousarray(a).view(np.uint8).ravel()
    nbytes = b.size
    words = np.zeros((nbytes + 7) // 8 * 8, np.uint8)
    words[:nbytes] = b
    h = FNV_OFFSET
    for w in words.view("<u8").tolist():
        h = ((h ^ w) * FNV_PRIME) & M64
    return ((h ^ nbytes) * FNV_PRIME) & M64


def _words(salt, n):
    return reference.hash64_array(np.uint64(salt << 40) ^ np.arange(n, dtype=np.uint64))


def _pick(w, special, raw, ordinary, raw_sel):
    sel = w & np.uint64(7)
    table = np.array(special, dtype=raw.dtype)
    spec = table[((w >> np.uint64(3)) % np.uint64(len(special))).astype(np.intp)]
    return np.where(sel == 0, spec, np.where(sel <= raw_sel, raw, ordinary))


def in_f32(salt, n):
    w = _words(salt, n)
    r = (w >> np.uint64(32)).astype(np.uint32)
    e = ((w >> np.uint64(8)) % np.uint64(15)).astype(np.uint32)
    ordinary = (r & np.uint32(0x807FFFFF)) | ((np.uint32(120) + e) << np.uint32(23))
    return _pick(w, SPECIAL32, r, ordinary, 2).view(np.float32)


def in_f64(salt, n):
    w = _words(salt, n)
    r = reference.hash64_array(w)
    e = (w >> np.uint64(8)) % np.uint64(15)
    ordinary = (r & np.uint64(0x800FFFFFFFFFFFFF)) | ((np.uint64(1016) + e) << np.uint64(52))
    return _pick(w, SPECIAL64, r, ordinary, 2).view(np.float64)


def in_half(salt, n, bf16=False):
    """uint16 bit patterns of float16 (or bfloat16)."""
    w = _words(salt, n)
    r = (w >> np.uint64(48)).astype(np.uint16)
    e = ((w >> np.uint64(8)) % np.uint64(15)).astype(np.uint16)
    if bf16:
        ordinary = (r & np.uint16(0x807F)) | ((np.uint16(120) + e) << np.uint16(7))
    else:
        ordinary = (r & np.uint16(0x83FF)) | ((np.uint16(8) + e) << np.uint16(10))
    return _pick(w, SPECIALBF if bf16 else SPECIAL16, r, ordinary, 3)


def canon_nan(y):
    """Every NaN -> the dtype's quiet NaN (check_kernels.c does so for dropout_add only)."""
    y = np.array(y)
    y[np.isnan(y)] = np.nan
    return y


# ---- the digest file ------------------------------------------------------------------------
def _cases():
    """{case name: digest} and the parsed cases, in file order."""
    out = []
    for line in DIGESTS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, d = line.rsplit("\t", 1)
        op, *fields = name.split(" ")
        kv = dict(f.split("=", 1) for f in fields)
        out.append((op, int(kv["seed"]), int(kv["off"]), int(kv["n"]), float(kv["p"]),
                    int(d, 16), name))
    return out


CASES = _cases()
EXACT_P = {0.5, 0.25, 0.75}  # multiples of 1/256: no tie hashes (docs/rng.md, section 6)


def _sample(op, n, count=3):
    """Up to `count` cases of `op` with length n, the exact and the tie path both when they
    exist, the largest offsets first (they reach the end of the stream)."""
    rows = sorted((c for c in CASES if c[0] == op and c[3] == n), key=lambda c: -c[2])
    exact = [c for c in rows if c[4] in EXACT_P]
    tie = [c for c in rows if c[4] not in EXACT_P]
    picked = exact[:1] + tie[:1]
    picked += [c for c in rows if c not in picked][: count - len(picked)]
    return picked


# (case op, n): block edges, odd lengths, every dtype and mask, the family, the walks
SAMPLE = [
    ("f32", 16385), ("f64", 1000), ("f16", 16383), ("bf16", 1000), ("u8", 40000),
    ("bits", 65), ("f32nt+4", 1000), ("normals", 16385), ("alpha_f32", 1000), ("add_f64", 1000),
    ("v_gmul_f32_normal", 1000), ("fortran_bands_f32", 7500), ("strided3d_strided_f16", 1155),
    ("fortran_bands_f64", 81920),
]


def test_sample_covers_both_paths_and_the_end_of_the_stream():
    picked = [c for op, n in SAMPLE for c in _sample(op, n)]
    assert len(picked) >= 2 * len(SAMPLE)
    assert any(c[4] in EXACT_P for c in picked) and any(c[4] not in EXACT_P for c in picked)
    assert any(c[2] + c[3] == 1 << 64 for c in picked)


def _oracle(op, seed, off, n, p):
    """The case's output from tests/reference.py (logical C order)."""
    if op in ("f32", "f32nt+4", "fortran_bands_f32"):
        return reference.dropout_ref(in_f32(SALT_X, n), p, seed, off)
    if op in ("f64", "fortran_bands_f64"):
        return reference.dropout_ref(in_f64(SALT_X, n), p, seed, off)
    if op in ("f16", "strided3d_strided_f16"):
        return reference.dropout_ref(in_half(SALT_X, n).view(np.float16), p, seed, off)
    if op == "bf16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        x = in_half(SALT_X, n, bf16=True).view(ml_dtypes.bfloat16)
        return reference.dropout_ref(x, p, seed, off)
    if op == "u8":
        return reference.keep_mask(n, p, seed, off).view(np.uint8)
    if op == "bits":
        return reference.packed_mask(n, p, seed, off)
    if op == "normals":
        return reference.normals(seed, off, n).astype(np.float32)
    if op == "alpha_f32":
        x = in_f32(SALT_X, n)
        keep = reference.keep_mask(n, p, seed, off)
        c0 = np.float32(1.0 / (1.0 - p))
        with np.errstate(all="ignore"):
            return np.where(keep, x * c0 + np.float32(ALPHA_C1), np.float32(ALPHA_C2))
    if op == "add_f64":
        bias = np.resize(in_f64(SALT_B, BIAS_N), n)
        y = reference.dropout_add_ref(in_f64(SALT_X, n), in_f64(SALT_R, n), p, seed, off, bias)
        return canon_nan(y)
    if op == "v_gmul_f32_normal":
        return reference.gaussian_dropout_ref(in_f32(SALT_X, n), p, seed, off)
    raise AssertionError(op)


def _installed(op, seed, off, n, p):
    """The case's output from the installed package (logical C order), or None."""
    kw = dict(seed=seed, offset=off)
    if op in ("f32", "f64", "f16", "f32nt+4"):
        x = {"f32": in_f32, "f32nt+4": in_f32, "f64": in_f64}.get(op)
        x = x(SALT_X, n) if x else in_half(SALT_X, n).view(np.float16)
        if op == "f32nt+4":  # the streaming kernel, into an output 4 bytes off a 64-byte line
            buf = np.zeros(n + 32, np.float32)
            skew = (-buf.ctypes.data % 64) // 4 + 1
            out = buf[skew:skew + n]
            old = _kernels.set_stream_bytes(0)
            try:
                cdrop.dropout(x, p, out=out, **kw)
            finally:
                _kernels.set_stream_bytes(old)
            return out
        return cdrop.dropout(x, p, **kw)
    if op == "fortran_bands_f32":
        x = np.asfortranarray(in_f32(SALT_X, n).reshape(100, 75))
        return cdrop.dropout(x, p, **kw)
    if op == "fortran_bands_f64":
        x = np.asfortranarray(in_f64(SALT_X, n).reshape(20, 4096))
        return cdrop.dropout(x, p, **kw)
    if op == "strided3d_strided_f16":
        base = np.zeros((7, 10, 99), np.float16)
        view = base[:, ::2, ::3]
        view[...] = in_half(SALT_X, n).view(np.float16).reshape(7, 5, 33)
        return cdrop.dropout(view, p, **kw)
    if op == "u8":
        return cdrop.dropout_mask(n, p, **kw).view(np.uint8)
    if op == "bits":
        return cdrop.dropout_mask(n, p, packed=True, **kw)
    if op == "normals":  # gaussian_noise's kernel on zeros with stddev 1 gives the normals
        z = np.zeros(n, np.float32)
        _kernels.apply_variant(_kernels.OP_GADD, z, z, seed, off, 0.5, 1, c0=1.0)
        return z
    if op == "alpha_f32":
        x = in_f32(SALT_X, n)
        y = np.empty_like(x)
        _kernels.apply_variant(_kernels.OP_ALPHA, x, y, seed, off, p, 1, c0=1.0 / (1.0 - p),
                               c1=ALPHA_C1, c2=ALPHA_C2)
        return y
    if op == "v_gmul_f32_normal":
        return cdrop.gaussian_dropout(in_f32(SALT_X, n), p, **kw)
    return None


@pytest.mark.parametrize("op,n", SAMPLE, ids=[f"{op}-n{n}" for op, n in SAMPLE])
def test_digest_file_equals_reference_and_installed_package(op, n):
    """The file's digests of a case equal the digests of tests/reference.py's output and of the
    installed package's output for the same inputs, seed, offset and p."""
    picked = _sample(op, n)
    assert picked, f"no {op} case of length {n} in {DIGESTS}"
    for op_, seed, off, n_, p, want, name in picked:
        assert digest(_oracle(op_, seed, off, n_, p)) == want, f"reference.py: {name}"
        got = _installed(op_, seed, off, n_, p)
        if got is not None:
            assert digest(got) == want, f"installed cdrop: {name}"


def test_digest_detects_a_single_bit():
    x = in_f32(SALT_X, 1000)
    y = x.copy()
    y.view(np.uint32)[999] ^= 1
    assert digest(x) != digest(y)
    assert digest(np.zeros(7, np.uint8)) != digest(np.zeros(8, np.uint8))  # the length counts


def test_inputs_hold_the_special_values():
    """NaN, infinities, -0.0, subnormals, float16 and bfloat16 overflow edges all occur."""
    x = in_f32(SALT_X, 1000)
    assert np.isnan(x).any() and np.isinf(x).any()
    assert (x.view(np.uint32) == 0x80000000).any()
    tiny = np.abs(x[np.isfinite(x)])
    assert ((tiny > 0) & (tiny < np.finfo(np.float32).tiny)).any()
    h = in_half(SALT_X, 16383)
    assert (h == 0x7BFF).any() and (h == 0x7800).any() and np.isnan(h.view(np.float16)).any()
    d = in_f64(SALT_X, 1000)
    assert np.isnan(d).any() and (np.abs(d) < np.finfo(np.float64).tiny).any()


# ---- the C program itself -------------------------------------------------------------------
@pytest.fixture(scope="module")
def check_kernels(tmp_path_factory):
    """tests/native/check_kernels.c built with the host C compiler at -O2."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:  # pragma: no cover
        pytest.skip("no C compiler (cc or gcc) on PATH: the C-level kernel check needs one")
    exe = tmp_path_factory.mktemp("native") / "check_kernels"
    subprocess.run(["sh", str(NATIVE / "build.sh"), str(exe), cc], check=True)
    return exe


def _run(exe, *args):
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def _paths_of_this_cpu():
    """The kernel paths that the installed package can select here (set_path falls back
    silently to the next one down; an unknown name is a ValueError)."""
    have, old = [], _kernels.get_path()
    try:
        for name in ("scalar", "portable", "avx2", "avx512"):
            try:
                if _kernels.set_path(name) == name:
                    have.append(name)
            except ValueError:  # a build without that path name (main has no "scalar")
                pass
    finally:
        _kernels.set_path(old)  # the session's path (CDROP_KERNEL may have forced one)
    return have


def test_c_check_passes_on_every_path_of_this_cpu(check_kernels):
    r = _run(check_kernels, str(DIGESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    paths = _paths_of_this_cpu()
    assert f"{len(CASES)} cases x {len(paths)} paths ({', '.join(paths)})" in r.stdout, r.stdout


def test_c_check_fails_on_a_wrong_digest_and_names_the_case(check_kernels, tmp_path):
    lines = DIGESTS.read_text().splitlines(keepends=True)
    k = next(i for i, ln in enumerate(lines) if ln.startswith("bits "))
    name, d = lines[k].rstrip("\n").rsplit("\t", 1)
    lines[k] = f"{name}\t{int(d, 16) ^ 1:016x}\n"
    bad = tmp_path / "digests.txt"
    bad.write_text("".join(lines))
    r = _run(check_kernels, str(bad))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"FAIL {name}:" in r.stdout
    assert "1 of " in r.stdout


def test_c_check_fails_when_the_case_list_differs(check_kernels, tmp_path):
    bad = tmp_path / "digests.txt"
    bad.write_text("".join(DIGESTS.read_text().splitlines(keepends=True)[:-1]))
    r = _run(check_kernels, str(bad))
    assert r.returncode == 1 and "case list differs" in r.stdout, r.stdout + r.stderr


def test_c_check_write_reproduces_the_committed_file(check_kernels, tmp_path):
    out = tmp_path / "digests.txt"
    r = _run(check_kernels, "--write", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    body = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert body == [ln for ln in DIGESTS.read_text().splitlines() if not ln.startswith("#")]
