"""No kernel may need more than a few KiB of stack: calls must work in threads with small stacks.

The band walk (Fortran-ordered and other column-major layouts) once kept a 64 KiB keep buffer on
the stack and the strided walk a 16 KiB one, so a thread with a 64 KiB stack died of SIGSEGV; the
walks now take per-thread scratch from the heap (cdrop/_src/walk_layout.c).  Each case runs in a
fresh Python, so that a crash fails the test instead of killing pytest.
"""
import os
import textwrap

from helpers import run_python

CALLS = textwrap.dedent(
    """
    import numpy as np
    import cdrop

    def calls(num_threads):
        x = np.asfortranarray(np.ones((512, 512), dtype=np.float32))   # the band walk
        y = cdrop.dropout(x, 0.5, seed=1, num_threads=num_threads)
        z = cdrop.dropout(x.T[::2], 0.5, seed=1, num_threads=num_threads)  # strided views
        w = cdrop.dropout(np.ones((512, 512))[:, ::2], 0.5, seed=1, num_threads=num_threads)
        ref = cdrop.dropout(np.ones((512, 512), np.float32), 0.5, seed=1)
        assert np.array_equal(y, ref), "wrong result"
        assert z.shape == (256, 512) and w.shape == (512, 256)
    """
)


def _run(code, **env):
    return run_python(CALLS + textwrap.dedent(code), os.path.dirname(os.path.abspath(__file__)),
                      env=env)


def test_python_thread_with_a_64k_stack():
    proc = _run(
        """
        import threading
        threading.stack_size(64 * 1024)
        errors = []
        def work():
            try:
                calls(1)
            except BaseException as exc:  # report it: an exception in a thread is not fatal
                errors.append(repr(exc))
        t = threading.Thread(target=work)
        t.start()
        t.join()
        assert not errors, errors
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"status {proc.returncode}\n{proc.stderr[-2000:]}")


def test_openmp_threads_with_a_64k_stack():
    proc = _run(
        """
        if not cdrop.show_config()["openmp"]:
            print("ok")  # no OpenMP threads in this build: nothing to test
        else:
            calls(2)
            print("ok")
        """,
        OMP_STACKSIZE="64K",
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (
        f"status {proc.returncode}\n{proc.stderr[-2000:]}")
