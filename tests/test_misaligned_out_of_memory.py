"""A misaligned call that runs out of memory for its aligned temporary consumes no seed.

README (Semantics): "a call that raises leaves x, out and the seed stream untouched";
dropout's docstring: MemoryError ... "A call that raises writes nothing and consumes no seed".
A misaligned array needs an aligned temporary (the kernels dereference typed pointers); it is
allocated before the seed is drawn, or not at all (an aligned result array holds the copy), so a
MemoryError leaves the package stream, a Generator and a layer's call number where they were.
"""
import sys

import pytest

from helpers import run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc")

CHILD = """
import resource
import numpy as np, cdrop

cdrop.set_num_threads(1)  # no OpenMP threads (and their stacks) under the limit
N = 16 << 20  # 64 MiB of float32
buf = np.zeros(4 * N + 1, np.uint8)
x = buf[1:].view(np.float32)  # contiguous, writeable, misaligned
assert not x.flags.aligned
with open("/proc/self/statm") as f:
    vm = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + (16 << 20), resource.RLIM_INFINITY))

def raises_memory_error(call):
    try:
        call()
    except MemoryError:
        return True
    return False

def first(seed):
    return cdrop.dropout_mask(64, 0.5, seed=seed, packed=True).tobytes()

# seed=None, the common call (fast path)
cdrop.manual_seed(5); expected = first(None)
cdrop.manual_seed(5)
assert raises_memory_error(lambda: cdrop.dropout(x, 0.5, inplace=True))
print("stream", first(None) == expected)

# a Generator (general path)
g = np.random.default_rng(0); state = g.bit_generator.state
assert raises_memory_error(lambda: cdrop.dropout(x, 0.5, inplace=True, seed=g))
print("generator", g.bit_generator.state == state)

# a layer's call number
layer, twin = cdrop.Dropout(0.5, seed=2, inplace=True), cdrop.Dropout(0.5, seed=2, inplace=True)
assert raises_memory_error(lambda: layer(x))
small = np.ones(1000, np.float32)
print("layer", bool((layer(small.copy()) == twin(small.copy())).all()))
"""


def test_memory_error_of_the_aligned_temporary_consumes_no_seed(tmp_path):
    proc = run_python(CHILD, tmp_path, check=True)
    assert proc.stdout.split() == ["stream", "True", "generator", "True", "layer", "True"]
