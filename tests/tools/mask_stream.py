#!/usr/bin/env python3
"""Write cdrop's p = 0.5 keep mask to stdout as a raw bit stream, for external RNG batteries.

The stream is ``cdrop.dropout_mask(n, 0.5, seed=SEED, offset=o, packed=True)`` for consecutive
chunks ``o = OFFSET, OFFSET + n, OFFSET + 2n, ...``, so byte ``i`` of the output holds the keep
bits of global indices ``OFFSET + 8 i .. OFFSET + 8 i + 7`` (bit ``g % 8`` = element ``g``,
docs/rng.md section 8).  At p = 0.5 the keep probability is exactly 1/2 (threshold 2**31), so
for a good generator the output is indistinguishable from fair coin flips.

Examples (see docs/rng.md, "Testing the stream with external batteries")::

    python tests/tools/mask_stream.py --seed 1 | dieharder -a -g 200
    python tests/tools/mask_stream.py --seed 1 --bytes 1048576 > mask.bin

Without ``--bytes`` the stream is endless (until index 2**64).  When the reader closes the pipe
(a battery that has read enough), the script exits quietly with status 0 in endless mode, and
with status 1 under ``--bytes`` because fewer bytes than asked for were delivered.
"""
import argparse
import os
import sys

import cdrop

END = 1 << 64  # global indices stop at 2**64 (docs/rng.md section 3)


def _nonneg(text):
    value = int(text, 0)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive(text):
    value = int(text, 0)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def chunks(seed, offset, nbytes, chunk_bytes, num_threads=None):
    """Yield the packed mask in pieces of at most `chunk_bytes` bytes (None = endless)."""
    left = nbytes
    while left is None or left > 0:
        take = chunk_bytes if left is None else min(chunk_bytes, left)
        take = min(take, (END - offset) // 8)
        if take == 0:
            return
        yield cdrop.dropout_mask(8 * take, 0.5, seed=seed, offset=offset, packed=True,
                                 num_threads=num_threads)
        offset += 8 * take
        if left is not None:
            left -= take


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=_nonneg, required=True,
                        help="integer seed, 0 <= seed < 2**64")
    parser.add_argument("--offset", type=_nonneg, default=0,
                        help="global index of the first element (default 0)")
    parser.add_argument("--bytes", type=_nonneg, default=None,
                        help="stop after this many bytes (default: endless)")
    parser.add_argument("--chunk-bytes", type=_positive, default=1 << 24,
                        help="bytes per dropout_mask call and write (default 16 MiB)")
    parser.add_argument("--num-threads", type=_positive, default=None,
                        help="threads per dropout_mask call (default: cdrop's default)")
    args = parser.parse_args(argv)
    if args.seed >= END:
        parser.error("--seed must be < 2**64")
    if args.offset >= END:
        parser.error("--offset must be < 2**64")

    out = sys.stdout.buffer
    try:
        for piece in chunks(args.seed, args.offset, args.bytes, args.chunk_bytes,
                            args.num_threads):
            out.write(memoryview(piece))
        out.flush()
    except BrokenPipeError:
        # The reader has gone.  Point stdout at /dev/null so that the interpreter's final flush
        # of the buffered remainder does not raise a second BrokenPipeError at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0 if args.bytes is None else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
