"""Where the dropout family's time goes: each kernel operation in cache and at 4M, per element.

For every operation of ``_kernels.apply_variant`` that a family function runs (the float32
arguments of bench/impls.py's FAMILY cases), times it in place on a small array that stays in
the L2 cache (16,384 elements, 64 KiB: what the operation computes, with almost no memory
traffic) and on 4M elements (what the family table measures), beside the floor
``np.multiply(x, c, out=x)`` at both sizes, in interleaved rounds, and prints nanoseconds per
element and ratios to the 4M floor.  An operation whose in-cache time per element is already
above its target times the floor is bound by computation, not memory.  Run from the repository
root, with the package installed:

    python bench/family_where.py [--rounds 15] [--threads 1] [--path avx2]

Compare ratios within one run: the machine may be shared.  Writes nothing.
"""
import argparse
import statistics

import numpy as np

from cdrop import _kernels as K
from cdrop._bench import interleaved_samples, positive_int

SMALL, LARGE = 16_384, 4_194_304
BATCH = 64  # small calls per timing


def cases(x, r, keep, bias, threads):
    """name -> zero-argument callable on x (in place; dropout_add: into r)."""
    t = threads
    return {
        "floor np.multiply(out=x)": lambda: np.multiply(x, np.float32(1.0), out=x),
        "floor np.add(x, r, out=r)": lambda: np.add(x, r, out=r),
        "OP_DROP stream mask (dropout)": lambda: K.apply_variant(K.OP_DROP, x, x, 1, 0, 0.5, t,
                                                                 c0=1.0),
        "OP_DROP keep (N, C, 1) (Dropout2d)": lambda: K.apply_variant(
            K.OP_DROP, x, x, 1, 0, 0.5, t, keep=keep, c0=1.0),
        "OP_ALPHA stream (alpha_dropout)": lambda: K.apply_variant(
            K.OP_ALPHA, x, x, 1, 0, 0.5, t, c0=1.0, c1=0.0, c2=0.0),
        "OP_ADD + bias, out=r (dropout_add)": lambda: K.apply_variant(
            K.OP_ADD, x, r, 1, 0, 0.5, t, residual=r, bias=bias, c0=1.0),
        "OP_GMUL (gaussian_dropout)": lambda: K.apply_variant(K.OP_GMUL, x, x, 1, 0, 0.5, t,
                                                              c0=0.0),
        "OP_GADD (gaussian_noise)": lambda: K.apply_variant(K.OP_GADD, x, x, 1, 0, 0.5, t,
                                                            c0=0.0),
    }


def operands(n):
    """x and r as rows of 1024 (dropout_add's bias along them), a Dropout2d-like keep array
    (one flag per 1024 elements, broadcast) and the broadcast bias."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n // 1024, 1024), dtype=np.float32)
    r = rng.standard_normal(x.shape, dtype=np.float32)
    keep = np.broadcast_to(np.ones((x.shape[0], 1), dtype=bool), x.shape)
    bias = np.broadcast_to(np.zeros(1024, dtype=np.float32), x.shape)
    return x, r, keep, bias


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=positive_int, default=15)
    ap.add_argument("--threads", type=positive_int, default=1)
    ap.add_argument("--path", default="auto",
                    choices=["auto", "scalar", "portable", "avx2", "avx512"],
                    help="the kernel path (default: the best this CPU and build have)")
    args = ap.parse_args()
    path = K.set_path(args.path)
    # multiplications by 1 and additions of 0 (c0 = 0 for the normals; the bias is 0): the
    # arrays stay as they are over the rounds, except r, which dropout_add adds x into
    small = cases(*operands(SMALL), args.threads)
    large = cases(*operands(LARGE), args.threads)
    names = list(small)
    funcs = [[f] * BATCH for f in small.values()] + list(large.values())
    samples = interleaved_samples(funcs, args.rounds, warmup=1, prime=True)
    med = [statistics.median(s) for s in samples]
    small_ns = [m / SMALL * 1e9 for m in med[:len(names)]]
    large_ns = [m / LARGE * 1e9 for m in med[len(names):]]
    floor = large_ns[0]
    K.set_path("auto")
    print(f"kernel path {path}, {args.threads} thread(s), {args.rounds} rounds; ns per element; "
          f"x floor = over the 4M np.multiply floor ({floor:.3f} ns)")
    print(f"{'operation':38s} {'16Ki':>7s} {'x floor':>8s} {'4M':>7s} {'x floor':>8s}")
    for name, s, big in zip(names, small_ns, large_ns):
        print(f"{name:38s} {s:7.3f} {s / floor:7.2f}x {big:7.3f} {big / floor:7.2f}x")


if __name__ == "__main__":
    main()
