"""fork()ed children do not repeat their parent's unseeded package stream.

README (Threads) names multiprocessing's fork start method and PyTorch DataLoader workers as
places cdrop runs.  The package stream behind ``seed=None`` is seeded from os.urandom at import;
a forked child that kept it would draw the parent's next seeds, the same "random" masks in every
worker, so the child reseeds it, as Python's own ``random`` does.  Only the unseeded stream
differs: after ``manual_seed`` a child continuing the sequence is reproducibility.
"""
import os
import sys

import pytest

from helpers import run_python

CHILD = """
import os, warnings
import cdrop  # a fresh import: the stream is unseeded (os.urandom), manual_seed never called

r, w = os.pipe()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, cdrop.dropout_mask(256, 0.5, seed=None, packed=True).tobytes())
    os._exit(0)
os.close(w)
child = b""
while chunk := os.read(r, 4096):
    child += chunk
os.waitpid(pid, 0)
parent = cdrop.dropout_mask(256, 0.5, seed=None, packed=True).tobytes()
print(len(child), child == parent)
"""


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork()")
def test_unseeded_stream_differs_in_a_forked_child(tmp_path):
    proc = run_python(CHILD, tmp_path, check=True)
    assert proc.stdout.split() == ["32", "False"]
