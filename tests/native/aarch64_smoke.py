"""The whole extension on aarch64: the same bits as on x86, through the Python API.

Run by tests/native/run_aarch64_python.sh in two steps:

    python aarch64_smoke.py expect FILE            # on x86: the expected digests, into FILE
    python aarch64_smoke.py check FILE --pkg DIR   # on aarch64 (qemu): cdrop from DIR/cdrop

``expect`` computes every case below with tests/reference.py (the pure-NumPy oracle of
docs/rng.md) on the x86 host and, when an x86 cdrop is importable there, with it too (a
disagreement fails).  ``check`` imports the aarch64 build, checks that it runs the portable
path on an aarch64 machine, recomputes every case with cdrop on the portable and on the
scalar path, and compares sha256 digests of the results (dtype, shape and every byte): one
differing bit fails the case.  It then proves on one result with a flipped bit that the
comparison can see a difference.

The inputs are made from integers, never from libm, so that both machines start from the
same bits.  Exit status: 0 all equal, 1 a case or a configuration check failed, 2 a usage
error.
"""
import argparse
import hashlib
import json
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _data(shape, dtype, salt=0):
    """Values m / 2**21 in [-4, 4), m a 24-bit integer from a multiplicative hash of the C index.

    Made from integers, not from libm or a NumPy generator, so that both machines start from
    the same bits; with full 24-bit significands (exact in float32 and float64, rounded once
    to float16), since a product of short significands is exact and would hide a fused
    multiply-add."""
    n = int(np.prod(shape))
    k = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(salt * 97 + 12345))
    m = ((k & np.uint64(0xFFFFFFFF)) >> np.uint64(8)).astype(np.int64) - 2**23
    return (m.astype(np.float64) / 2**21).astype(dtype).reshape(shape)


def _fortran(shape, dtype):
    return np.asfortranarray(_data(shape, dtype))


def _small_trailing(dtype):
    # the worst case of issue 12: a transposed view with small trailing axes
    return _data((4096, 8, 2), dtype).transpose(0, 2, 1)


def _strided(dtype):
    return _data((512, 515), dtype)[:, ::2]


def _inplace(fn, x):
    fn(x)  # x is fresh (a view keeps its base alive): its own data is the result
    return x


def cases():
    """name -> (cdrop call, reference call): each takes the two modules, returns an array."""
    c = {}

    def add(name, run, ref):
        c[name] = (run, ref)

    for p, n, off in ((0.5, 100003, 0), (0.1, 40009, 12345), (0.3, 40009, 7), (0.9, 40009, 1)):
        add(f"dropout f32 n={n} p={p} offset={off}",
            lambda cd, p=p, n=n, off=off: cd.dropout(_data(n, np.float32), p, seed=1, offset=off),
            lambda rf, p=p, n=n, off=off: rf.dropout_ref(_data(n, np.float32), p, 1, off))
    for t in (1, 2):  # 300001 elements: above min_parallel, so 2 threads really split it
        add(f"dropout f32 n=300001 p=0.2 threads={t}",
            lambda cd, t=t: cd.dropout(_data(300001, np.float32), 0.2, seed=5, num_threads=t),
            lambda rf: rf.dropout_ref(_data(300001, np.float32), 0.2, 5))
    add("dropout f32 inplace n=65537 p=0.5",
        lambda cd: _inplace(lambda y: cd.dropout(y, 0.5, seed=2, inplace=True),
                            _data(65537, np.float32)),
        lambda rf: rf.dropout_ref(_data(65537, np.float32), 0.5, 2))
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        add(f"dropout {name} Fortran (301, 257) p=0.5",
            lambda cd, dt=dt: cd.dropout(_fortran((301, 257), dt), 0.5, seed=3),
            lambda rf, dt=dt: rf.dropout_ref(_data((301, 257), dt), 0.5, 3))
        add(f"dropout {name} Fortran (301, 257) p=0.2 inplace threads=2",
            lambda cd, dt=dt: _inplace(
                lambda y: cd.dropout(y, 0.2, seed=3, inplace=True, num_threads=2),
                _fortran((301, 257), dt)),
            lambda rf, dt=dt: rf.dropout_ref(_data((301, 257), dt), 0.2, 3))
        add(f"dropout {name} (4096, 8, 2).transpose(0, 2, 1) p=0.3",
            lambda cd, dt=dt: cd.dropout(_small_trailing(dt), 0.3, seed=4),
            lambda rf, dt=dt: rf.dropout_ref(np.ascontiguousarray(_small_trailing(dt)), 0.3, 4))
        add(f"dropout {name} (4096, 8, 2).transpose(0, 2, 1) p=0.5 inplace",
            lambda cd, dt=dt: _inplace(lambda y: cd.dropout(y, 0.5, seed=4, inplace=True),
                                       _small_trailing(dt)),
            lambda rf, dt=dt: rf.dropout_ref(np.ascontiguousarray(_small_trailing(dt)), 0.5, 4))
        add(f"dropout {name} (512, 515)[:, ::2] p=0.1",
            lambda cd, dt=dt: cd.dropout(_strided(dt), 0.1, seed=6, offset=99),
            lambda rf, dt=dt: rf.dropout_ref(np.ascontiguousarray(_strided(dt)), 0.1, 6, 99))
    add("dropout f64 n=50001 p=0.3 threads=2",
        lambda cd: cd.dropout(_data(50001, np.float64), 0.3, seed=8, num_threads=2),
        lambda rf: rf.dropout_ref(_data(50001, np.float64), 0.3, 8))
    for p in (0.5, 0.2):
        add(f"dropout f16 n=50001 p={p}",
            lambda cd, p=p: cd.dropout(_data(50001, np.float16), p, seed=9, offset=5),
            lambda rf, p=p: rf.dropout_ref(_data(50001, np.float16), p, 9, 5))
    add("dropout f16 Fortran (257, 131) p=0.5",
        lambda cd: cd.dropout(_fortran((257, 131), np.float16), 0.5, seed=9),
        lambda rf: rf.dropout_ref(_data((257, 131), np.float16), 0.5, 9))
    for p in (0.5, 0.2):
        add(f"dropout_mask (257, 129) p={p}",
            lambda cd, p=p: cd.dropout_mask((257, 129), p, seed=7, offset=3),
            lambda rf, p=p: rf.keep_mask((257, 129), p, 7, 3))
        add(f"dropout_mask packed (257, 129) p={p}",
            lambda cd, p=p: cd.dropout_mask((257, 129), p, seed=7, offset=3, packed=True),
            lambda rf, p=p: rf.packed_mask((257, 129), p, 7, 3))
    add("dropout_mask (300001,) p=0.7 threads=2",
        lambda cd: cd.dropout_mask(300001, 0.7, seed=10, num_threads=2),
        lambda rf: rf.keep_mask((300001,), 0.7, 10))
    add("dropout block global_shape=(600, 70) start=(100, 10) p=0.4",
        lambda cd: cd.dropout(_data((200, 50), np.float32), 0.4, seed=12,
                              global_shape=(600, 70), start=(100, 10)),
        lambda rf: rf.block_dropout_ref(_data((200, 50), np.float32), 0.4, 12, (600, 70),
                                        (100, 10)))
    # the dropout family: alpha's a * b + c and the normal transform are where a compiler
    # that contracts into FMA (aarch64 GCC's default) would change the last bit
    v = (64, 33, 5)
    add("alpha_dropout f32 p=0.5",
        lambda cd: cd.alpha_dropout(_data(v, np.float32), 0.5, seed=13, offset=2),
        lambda rf: rf.alpha_ref(_data(v, np.float32), 0.5, 13, 2))
    add("gaussian_dropout f32 p=0.3",
        lambda cd: cd.gaussian_dropout(_data(v, np.float32), 0.3, seed=14, offset=3),
        lambda rf: rf.gaussian_dropout_ref(_data(v, np.float32), 0.3, 14, 3))
    add("gaussian_noise f32 stddev=0.7",
        lambda cd: cd.gaussian_noise(_data(v, np.float32), 0.7, seed=15),
        lambda rf: rf.gaussian_noise_ref(_data(v, np.float32), 0.7, 15))
    add("drop_path f32 p=0.5",
        lambda cd: cd.drop_path(_data(v, np.float32), 0.5, seed=16),
        lambda rf: rf.drop_path_ref(_data(v, np.float32), 0.5, 16))
    # big (the fused block loops) and small, at an offset (the scalar head and tail code)
    for dt, w, off in ((np.float32, v, 0), (np.float64, v, 0), (np.float32, (7, 9), 3),
                       (np.float64, (7, 9), 3)):
        name = np.dtype(dt).name
        add(f"dropout_add {name} {w} p=0.4 offset={off} bias",
            lambda cd, dt=dt, w=w, off=off: cd.dropout_add(
                _data(w, dt), _data(w, dt, 1), 0.4, seed=17, offset=off, bias=_data(w[-1], dt, 2)),
            lambda rf, dt=dt, w=w, off=off: rf.dropout_add_ref(
                _data(w, dt), _data(w, dt, 1), 0.4, 17, off, _data(w[-1], dt, 2)))
    add("alpha_dropout f64 (7, 9) p=0.3 offset=3",
        lambda cd: cd.alpha_dropout(_data((7, 9), np.float64), 0.3, seed=18, offset=3),
        lambda rf: rf.alpha_ref(_data((7, 9), np.float64), 0.3, 18, 3))
    return c


def digest(a):
    a = np.asarray(a)
    h = hashlib.sha256(f"{a.dtype.str} {a.shape}|".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def expect(path):
    sys.path.insert(0, os.path.join(HERE, ".."))  # tests/: the oracle
    import reference

    try:
        import cdrop
    except ImportError:
        cdrop = None
    out = {"machine": platform.machine(), "numpy": np.__version__,
           "by": "tests/reference.py", "cases": {}}
    if cdrop is not None:
        out["by"] += f" and cdrop {cdrop.__version__} ({cdrop.show_config()['simd']})"
        out["stream"] = cdrop.show_config()["stream"]
    bad = 0
    for name, (run, ref) in cases().items():
        d = digest(ref(reference))
        if cdrop is not None and digest(run(cdrop)) != d:
            print(f"aarch64_smoke: x86 cdrop and reference.py differ: {name}", file=sys.stderr)
            bad += 1
        out["cases"][name] = d
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"aarch64_smoke: {len(out['cases'])} expected digests by {out['by']} on "
          f"{out['machine']}, numpy {out['numpy']} -> {path}")
    return 1 if bad else 0


def check(path, pkg):
    with open(path) as f:
        exp = json.load(f)
    sys.path.insert(0, pkg)
    import cdrop

    cfg = cdrop.show_config()
    print(f"aarch64_smoke: {platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, cdrop from {os.path.dirname(cdrop.__file__)}")
    print(f"aarch64_smoke: show_config() = {cfg}")
    fails = []
    if platform.machine() != "aarch64":
        fails.append(f"machine is {platform.machine()!r}, not 'aarch64'")
    if cfg["simd"] != "portable" or cfg["avx2_compiled"]:
        fails.append(f"simd={cfg['simd']!r} avx2_compiled={cfg['avx2_compiled']}: "
                     "expected the portable path alone")
    if not cfg["openmp"]:
        fails.append("built without OpenMP")
    if "stream" in exp and cfg["stream"] != exp["stream"]:
        fails.append(f"stream {cfg['stream']} here, {exp['stream']} on x86")
    todo = cases()
    if set(todo) != set(exp["cases"]):
        fails.append("the expected file is for other cases: rerun `expect`")
    # every case on the portable path (what auto picks) and on the scalar reference path
    results = {}
    for path in ("portable", "scalar"):
        if cdrop._kernels.set_path(path) != path:
            fails.append(f"cannot select the {path} path")
            continue
        for name, (run, _ref) in todo.items():
            results[name] = run(cdrop)
            if digest(results[name]) != exp["cases"].get(name):
                fails.append(f"differs from x86 on the {path} path: {name}")
    cdrop._kernels.set_path("auto")
    # the comparison itself: one flipped bit in one result must show
    name = next(iter(todo))
    flipped = np.array(results[name], copy=True)
    flipped.view(np.uint8).reshape(-1)[flipped.nbytes // 2] ^= 1
    if digest(flipped) == exp["cases"].get(name):
        fails.append("self-test: a result with one bit flipped was not seen as different")
    for f in fails:
        print(f"aarch64_smoke: FAIL {f}", file=sys.stderr)
    print(f"aarch64_smoke: {len(todo)} cases x 2 paths against digests made on "
          f"{exp['machine']} by {exp['by']}: "
          f"{'all equal' if not fails else f'{len(fails)} failure(s)'}")
    return 1 if fails else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("expect", "check"))
    ap.add_argument("file", help="the expected digests (JSON)")
    ap.add_argument("--pkg", help="check: the folder that holds the aarch64 cdrop package")
    a = ap.parse_args(argv)
    if a.mode == "expect":
        return expect(a.file)
    if not a.pkg:
        ap.error("check needs --pkg")
    return check(a.file, a.pkg)


if __name__ == "__main__":
    sys.exit(main())
