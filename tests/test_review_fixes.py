"""Regression tests for defects found in review of the core (each failed before its fix)."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import cdrop


def test_backward_uses_the_p_of_its_forward():
    layer = cdrop.Dropout(0.5, seed=0)
    y = layer(np.ones(4096))
    layer.p = 0.25  # e.g. a dropout schedule, between forward and backward
    g = layer.backward(np.ones(4096))
    assert np.array_equal(g, y)


def test_backward_in_eval_mode_is_the_identity_after_a_training_forward():
    layer = cdrop.Dropout(0.5, seed=0)
    layer(np.ones(64))
    layer.eval()
    grad = np.ones(64)
    assert layer.backward(grad) is grad
    layer.train()
    assert not np.array_equal(layer.backward(grad), grad)  # the training mask again


def test_backward_in_eval_mode_before_any_forward():
    grad = np.ones(3)
    assert cdrop.Dropout(0.5, seed=0).eval().backward(grad) is grad


def test_out_over_the_same_elements_through_another_object_is_returned():
    x = np.arange(1, 4097, dtype=np.float32)
    expected = cdrop.dropout(x, 0.5, seed=1)
    view = x[:]
    got = cdrop.dropout(x, 0.5, seed=1, out=view)
    assert got is view
    assert np.array_equal(x, expected)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_read_only_x_with_writeable_out_over_its_elements(p):
    base = np.arange(1, 4097, dtype=np.float32)
    expected = cdrop.dropout(base, p, seed=2)
    x = base.view()
    x.flags.writeable = False
    got = cdrop.dropout(x, p, seed=2, out=base)
    assert got is base
    assert np.array_equal(base, expected)


def test_inplace_with_out_over_the_same_elements():
    x = np.arange(1, 65, dtype=np.float64)
    expected = cdrop.dropout(x, 0.5, seed=3)
    cdrop.dropout(x, 0.5, seed=3, inplace=True, out=x[:])
    assert np.array_equal(x, expected)


def test_eval_mode_in_place_on_read_only_array_returns_it():
    x = np.ones(8, dtype=np.float32)
    x.flags.writeable = False
    assert cdrop.dropout(x, 0.5, training=False, inplace=True) is x
    assert cdrop.Dropout(0.5, inplace=True, seed=0).eval()(x) is x


@pytest.mark.parametrize("seed,exc", [("junk", TypeError), (-5, ValueError), (2**64, ValueError)])
def test_eval_mode_still_validates_the_seed(seed, exc):
    with pytest.raises(exc, match="seed"):
        cdrop.dropout(np.ones(4), 0.5, training=False, seed=seed)


def test_mask_shape_from_an_integer_array():
    m = cdrop.dropout_mask(np.array([2, 3]), 0.5, seed=4)
    assert m.shape == (2, 3)
    assert np.array_equal(m, cdrop.dropout_mask((2, 3), 0.5, seed=4))


def test_call_uses_a_subclass_forward():
    class Twice(cdrop.Dropout):
        def forward(self, x):
            return super().forward(x) * 2

    layer = Twice(0.0, seed=0)
    assert np.array_equal(layer(np.ones(3)), np.full(3, 2.0))


def _run(code, tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=full,
                          capture_output=True, text=True, timeout=120)


def test_bad_cdrop_kernel_warns_instead_of_breaking_import(tmp_path):
    proc = _run("import cdrop; print(cdrop.show_config()['simd'])", tmp_path,
                CDROP_KERNEL="bogus")
    assert proc.returncode == 0, proc.stderr
    assert "CDROP_KERNEL ignored" in proc.stderr
    assert proc.stdout.strip() in ("avx512", "avx2", "portable")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_reports_one_thread():
    r, w = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork() with threads running
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report and leave without running the parent's cleanup
        os.close(r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            msg = f"{cdrop.get_num_threads()} {cdrop.show_config()['max_threads']}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    data = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert data == "1 1"
