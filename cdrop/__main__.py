"""The ``cdrop`` command (also ``python -m cdrop``): the configuration and a speed comparison.

``cdrop --help`` lists the options.  The comparison times cdrop and the textbook NumPy dropout
(:func:`cdrop._bench.textbook_dropout`) with the interleaved-median timer that bench/report.py
uses too (:func:`cdrop._bench.interleaved_samples`).
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

import cdrop

from ._bench import interleaved_samples, positive_int, textbook_dropout

# The help text is plain text, not reST: argparse prints it as it is.
DESCRIPTION = """\
Print cdrop's build configuration, then compare cdrop with the textbook
NumPy dropout (a float64 uniform mask, a multiplication and a division) on
the same data. The implementations run in interleaved rounds and each time
is a median, so the comparison takes a few seconds (see --budget)."""

EPILOG = """\
examples:
  cdrop                              configuration and default comparison
  cdrop --config                     configuration only
  cdrop --sizes 1k,64k,4M --p 0.1    other sizes and drop probability
  cdrop --threads 1 --dtype float64  one thread, float64 data

Times on a shared machine move between runs: compare the speed-ups
within one run, not times across runs."""

DEFAULT_SIZES = (16_384, 1_048_576, 16_777_216)
# Binary multiples, as the benchmarks' sizes are (16M = 16,777,216 elements).
_SUFFIXES = {"k": 2**10, "m": 2**20}
_MAX_SIZE = sys.maxsize // 8


def parse_sizes(text):
    """Array sizes from ``"16384,1M,16M"``: a comma-separated list of element counts.

    Each count is an int (``16384``, ``16_384``) or a number with a suffix k (x 1,024) or
    M (x 1,048,576), in either case: ``64k``, ``1.5M``.  Raises argparse.ArgumentTypeError (so
    that argparse names the option) for anything else, or a count below 1.
    """
    sizes = []
    for item in text.split(","):
        item = item.strip()
        scale = _SUFFIXES.get(item[-1:].lower(), 1)
        number = item[:-1] if scale > 1 else item
        try:
            value = float(number) * scale if "." in number or "e" in number.lower() \
                else int(number) * scale
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid size {item!r} (expected a number of elements such as 16384, 64k or "
                "16M, or a comma-separated list of them)") from None
        if not (math.isfinite(value) and value == int(value) and value >= 1):
            raise argparse.ArgumentTypeError(
                f"invalid size {item!r} (a whole number of elements, at least 1)")
        if value > _MAX_SIZE:  # NumPy could not even describe such an array's bytes
            raise argparse.ArgumentTypeError(f"invalid size {item!r} (too large)")
        sizes.append(int(value))
    return sizes


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    # p = 1 is valid for cdrop, but the textbook dropout divides by 1 - p
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number with 0 <= p < 1, got {text!r}")
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def parser():
    """The command line's argparse parser."""
    ap = argparse.ArgumentParser(prog="cdrop", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"%(prog)s {cdrop.__version__}")
    ap.add_argument("--config", action="store_true",
                    help="print the configuration only, no comparison")
    ap.add_argument("--sizes", type=parse_sizes, nargs="+", metavar="N",
                    help="array sizes in elements, comma- or space-separated, with optional "
                         "suffixes k (x 1,024) and M (x 1,048,576) (default: 16k,1M,16M)")
    ap.add_argument("--dtype", choices=("float16", "float32", "float64"), default="float32",
                    help="element type (default: float32)")
    ap.add_argument("--p", type=_probability, default=0.5, metavar="P",
                    help="drop probability, 0 <= P < 1 (default: 0.5)")
    ap.add_argument("--threads", type=positive_int, metavar="N",
                    help="threads for cdrop (default: cdrop.get_num_threads(), "
                         "the max_threads line; NumPy always runs on one)")
    ap.add_argument("--budget", type=_seconds, default=3.0, metavar="SECONDS",
                    help="about how long the comparison takes, shared by the sizes; each size "
                         "runs at least 3 rounds (default: 3)")
    return ap


def compare(sizes=DEFAULT_SIZES, p=0.5, dtype="float32", threads=None, budget=3.0,
            file=None):
    """Print a table comparing cdrop with the textbook NumPy dropout, one row per size.

    Each size gets ``budget / len(sizes)`` seconds (at least 3 rounds, at most 200).  cdrop in
    place works on a scratch copy of the data, restored (untimed) before every call, so that no
    call sees an array that earlier calls zeroed.  `file`: where to print (None: the
    ``sys.stdout`` of the moment, so that a redirection made after import is followed).
    """
    print(f"{'elements':>12s} {'numpy textbook':>15s} {'cdrop':>10s} {'cdrop in place':>15s} "
          f"{'speed-up':>9s}", file=file, flush=True)
    for n in sizes:
        tn, tc, ti = _time_size(n, p, dtype, threads, budget / len(sizes))
        print(f"{n:>12,d} {tn * 1e3:>12.3f} ms {tc * 1e3:>7.3f} ms {ti * 1e3:>12.3f} ms "
              f"{tn / tc:>8.1f}x", file=file, flush=True)


def _time_size(n, p, dtype, threads, budget):
    """Median seconds of the textbook dropout, cdrop and cdrop in place on n elements."""
    x = np.random.default_rng(0).standard_normal(n).astype(dtype)
    work = x.copy()
    funcs = [
        lambda: textbook_dropout(x, p),
        lambda: cdrop.dropout(x, p, num_threads=threads),
        lambda: cdrop.dropout(work, p, inplace=True, num_threads=threads),
    ]
    setups = [None, None, lambda: np.copyto(work, x)]
    t0 = time.perf_counter()
    interleaved_samples(funcs, 1, setups=setups)  # a warm-up round that sets the rounds
    one = time.perf_counter() - t0
    rounds = int(max(3, min(200, budget / max(one, 1e-9))))
    return [statistics.median(s) for s in interleaved_samples(funcs, rounds, setups=setups)]


def _run(argv):
    args = parser().parse_args(argv)
    print("cdrop configuration:")
    for key, value in cdrop.show_config().items():
        print(f"  {key:15s} {value}")
    if args.config:
        return 0
    sizes = [n for group in args.sizes for n in group] if args.sizes else DEFAULT_SIZES
    n = args.threads or cdrop.get_num_threads()
    threads = f"{n} thread{'s' if n > 1 else ''}" + ("" if args.threads else " (the default)")
    print()
    print(f"{args.dtype}, p = {args.p}, cdrop on {threads}; median of interleaved rounds "
          "(speed-up: textbook / cdrop out of place)", flush=True)
    try:
        compare(sizes, p=args.p, dtype=args.dtype, threads=args.threads, budget=args.budget)
    except MemoryError:
        print(f"cdrop: error: not enough memory for --sizes {max(sizes):,} (the comparison "
              "holds about 5 arrays of that size)", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    """Run the command with `argv` (default: sys.argv[1:]); return the exit status."""
    try:
        try:
            return _run(argv)
        finally:
            # Flush here, inside the try: a closed pipe then raises below, not at exit.  (No
            # stdout at all, `cdrop >&-`: print() writes nothing, and there is nothing to flush.)
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`cdrop | head -5`).  As the Python docs advise ("Note on
        # SIGPIPE", signal module): point stdout at devnull, so that the interpreter's last
        # flush cannot raise again, and exit quietly, with the status of a process that
        # SIGPIPE ended (128 + 13, what a shell shows for one).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:  # Ctrl-C: stop without a traceback, with a shell's 128 + SIGINT
        return 130


if __name__ == "__main__":
    sys.exit(main())
