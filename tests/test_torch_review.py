"""cdrop.torch as an outside user breaks it: torch.jit.trace, views with torch's negative bit,
inference tensors, Dropout(seed=int) shared by threads or given bad input, a module made in
inference mode, and replace_dropout on a shared module."""
import copy
import subprocess
import sys
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import cdrop  # noqa: E402
import cdrop.torch as ct  # noqa: E402

F = torch.nn.functional


def numpy_dropout(t, p, seed, offset=0):
    return torch.from_numpy(cdrop.dropout(t.contiguous().numpy(), p, seed=seed, offset=offset))


# --- torch.jit.trace --------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
@pytest.mark.parametrize("seed", [None, 5])
def test_traced_function_computes_dropout_of_its_new_input(seed):
    # The eager fast path wrote through NumPy, which a trace cannot see: the traced graph
    # returned torch.empty_like's uninitialised memory.
    def f(t):
        return ct.dropout(t, 0.5, seed=seed)

    traced = torch.jit.trace(f, torch.ones(1000), check_trace=False)
    x = torch.full((1000,), 3.0)
    y = traced(x)
    assert set(y.tolist()) <= {0.0, 6.0}
    assert 300 < int((y == 6.0).sum()) < 700
    if seed is not None:
        assert torch.equal(y, numpy_dropout(x, 0.5, seed))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_traced_module_draws_a_new_mask_each_call():
    traced = torch.jit.trace(ct.Dropout(0.5), torch.ones(1000), check_trace=False)
    a, b = traced(torch.ones(1000)), traced(torch.ones(1000))
    assert set(a.tolist()) <= {0.0, 2.0} and not torch.equal(a, b)


# --- views with torch's negative bit (z.conj().imag) -----------------------------------------
def neg_view(n=1000):
    z = torch.randn(n, dtype=torch.complex128, generator=torch.Generator().manual_seed(1))
    v = z.conj().imag
    assert v.is_neg() and v.dtype == torch.float64
    return v


def test_negative_bit_view_out_of_place_is_dropout_of_its_values():
    v = neg_view()
    expected = numpy_dropout(v.resolve_neg(), 0.3, 9)
    assert torch.equal(ct.dropout(v, 0.3, seed=9), expected)
    assert torch.equal(ct.dropout(v, 0.3, seed=torch.Generator().manual_seed(2)).ne(0),
                       ct.dropout(v.resolve_neg(), 0.3,
                                  seed=torch.Generator().manual_seed(2)).ne(0))


def test_negative_bit_view_in_place_writes_its_values():
    v = neg_view()
    expected = numpy_dropout(v.resolve_neg(), 0.3, 9)
    assert ct.dropout(v, 0.3, inplace=True, seed=9) is v
    assert torch.equal(v, expected)


def test_negative_bit_view_large_result_keeps_values():
    v = neg_view(600_000)  # 4.8 MB of float64: a result allocated by NumPy
    assert torch.equal(ct.dropout(v, 0.3, seed=9), numpy_dropout(v.resolve_neg(), 0.3, 9))


def test_negative_bit_view_gradient():
    z = torch.randn(50, dtype=torch.complex128, requires_grad=True)
    ct.dropout(z.conj().imag, 0.3, seed=4).sum().backward()
    mask = numpy_dropout(torch.ones(50, dtype=torch.float64), 0.3, 4)
    assert torch.equal(z.grad.imag, -mask)


# --- inference tensors -------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [None, 3, "generator"])
def test_in_place_on_inference_tensor_outside_inference_mode_is_refused(seed):
    if seed == "generator":
        seed = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        t, u = torch.ones(100), torch.ones(100)
    with pytest.raises(RuntimeError, match="inference tensor"):
        F.dropout(u, 0.5, inplace=True)  # torch refuses it (after writing u)
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="inference tensor"):
        ct.dropout(t, 0.5, inplace=True, seed=seed)
    assert torch.equal(t, torch.ones(100))
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn


def test_in_place_on_inference_tensor_inside_inference_mode_works():
    with torch.inference_mode():
        t = torch.ones(100)
        assert ct.dropout(t, 0.5, inplace=True, seed=3) is t
    assert torch.equal(t, numpy_dropout(torch.ones(100), 0.5, 3))


def test_module_made_in_inference_mode_trains_outside_it():
    with torch.inference_mode():
        layer = ct.Dropout(0.5, seed=7)
        first = layer(torch.ones(64))
    second = layer(torch.ones(64))
    reference = cdrop.Dropout(0.5, seed=7)
    for got in (first, second):
        assert torch.equal(got, torch.from_numpy(reference(np.ones(64, np.float32))))
    assert layer.calls == 2


def test_module_copied_in_inference_mode_counts_its_calls_outside_it():
    layer = ct.Dropout(0.5, seed=7)
    layer(torch.ones(4))
    with torch.inference_mode():
        copied = copy.deepcopy(layer)
    reference = cdrop.Dropout(0.5, seed=7)
    reference(np.ones(4, np.float32))
    for _ in range(3):
        assert torch.equal(copied(torch.ones(64)),
                           torch.from_numpy(reference(np.ones(64, np.float32))))
    assert copied.calls == 4


# --- Dropout(seed=int): a call that raises takes no call number; threads take distinct ones ---
@pytest.mark.parametrize("bad", [
    lambda: torch.ones(4, dtype=torch.int32),
    lambda: torch.ones(4, requires_grad=True),  # in place on a leaf that requires grad
    lambda: torch.ones(3, 1).expand(3, 4),  # in place on overlapping elements
])
def test_failed_call_takes_no_call_number(bad):
    layer = ct.Dropout(0.5, inplace=True, seed=7)
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        layer(bad())
    assert layer.calls == 0
    assert torch.equal(layer(torch.ones(16)),
                       torch.from_numpy(cdrop.Dropout(0.5, seed=7)(np.ones(16, np.float32))))


def test_threads_sharing_a_seeded_module_get_distinct_call_numbers(monkeypatch):
    layer = ct.Dropout(0.5, seed=11)
    keys = []
    fill = ct._fill

    def recording(src, dst, key, offset, p):
        keys.append(key)
        return fill(src, dst, key, offset, p)

    monkeypatch.setattr(ct, "_fill", recording)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race is reachable
    try:
        def work():
            for _ in range(1500):
                layer(torch.ones(8))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert layer.calls == 6000
    assert len(set(keys)) == 6000
    assert set(keys) == {ct._kernels.derive(11, k) for k in range(6000)}


# --- replace_dropout keeps a shared module shared -----------------------------------------------
def test_replace_dropout_keeps_one_module_referenced_twice_as_one():
    shared = torch.nn.Dropout(0.3)
    net = torch.nn.Sequential(shared, torch.nn.ModuleList([shared, torch.nn.Dropout(0.3)]))
    ct.replace_dropout(net)
    assert type(net[0]) is ct.Dropout
    assert net[0] is net[1][0] and net[1][1] is not net[0]
    assert len([m for m in net.modules() if isinstance(m, ct.Dropout)]) == 2


# --- forward-mode AD and torch.func ------------------------------------------------------------
# torch's make_dual loads its decompositions through torch.jit.script the first time
jit_script_warning = pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning")


@jit_script_warning
@pytest.mark.parametrize("seed", [7, "generator", None])
def test_forward_mode_ad_carries_the_tangent_through_the_mask(seed):
    import torch.autograd.forward_ad as fwAD

    x = torch.randn(300, dtype=torch.float64)
    tangent = torch.randn(300, dtype=torch.float64)
    make = (lambda: torch.Generator().manual_seed(3)) if seed == "generator" else (lambda: seed)
    torch.manual_seed(0)
    with fwAD.dual_level():
        out = ct.dropout(fwAD.make_dual(x, tangent), 0.4, seed=make(), offset=5)
        primal, jvp = fwAD.unpack_dual(out)
    torch.manual_seed(0)
    expected = ct.dropout(x, 0.4, seed=make(), offset=5)
    assert torch.equal(primal, expected)
    assert jvp is not None  # the operators dropped it: a silently zero derivative
    keep = expected != 0
    assert torch.equal(jvp, torch.where(keep, tangent / 0.6, torch.zeros(())))


@jit_script_warning
def test_forward_mode_ad_in_place_and_gradcheck():
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        dual = fwAD.make_dual(torch.ones(100), torch.full((100,), 3.0))
        assert ct.dropout(dual, 0.5, inplace=True, seed=2) is dual
        primal, jvp = fwAD.unpack_dual(dual)
    mask = numpy_dropout(torch.ones(100), 0.5, 2)
    assert torch.equal(primal, mask) and torch.equal(jvp, 3 * mask)
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ct.dropout(t.t(), 0.3, seed=1), (x.view(4, 5),),
                                    check_forward_ad=True)


@pytest.mark.parametrize("seed", [None, 1])
def test_vmap_is_a_clear_error(seed):
    import torch.func

    with pytest.raises((TypeError, RuntimeError), match="torch.func|randomness"):
        torch.func.vmap(lambda t: ct.dropout(t, 0.5, seed=seed))(torch.ones(3, 4))
    with pytest.raises(TypeError, match="torch.func"):
        torch.func.vmap(lambda t: ct.dropout(t, 0.5, seed=1), randomness="same")(torch.ones(3, 4))


@jit_script_warning
def test_torch_func_jvp_is_the_masked_tangent():
    import torch.func

    x, tangent = torch.randn(200), torch.randn(200)
    primal, jvp = torch.func.jvp(lambda t: ct.dropout(t, 0.25, seed=6), (x,), (tangent,))
    assert torch.equal(primal, ct.dropout(x, 0.25, seed=6))
    assert torch.equal(jvp, ct.dropout(tangent, 0.25, seed=6))


# --- a default-device context (torch.device("meta") for model initialisation) ----------------
@pytest.mark.parametrize("seed", [None, 9, "generator", "layer"])
def test_default_device_context_does_not_move_the_key(seed):
    # The key tensors followed the context's device: on "meta", the operator ran its meta
    # kernel and returned uninitialised memory for a CPU input.
    x = torch.ones(1000)
    if seed == "layer":
        expected = ct.Dropout(0.5, seed=4)(x)
        with torch.device("meta"):
            layer = ct.Dropout(0.5, seed=4)
            got = layer(x)
    else:
        make = (lambda: torch.Generator().manual_seed(1)) if seed == "generator" else (lambda: seed)
        torch.manual_seed(0)
        expected = ct.dropout(x, 0.5, seed=make())
        with torch.device("meta"):
            torch.manual_seed(0)
            got = ct.dropout(x, 0.5, seed=make())
    assert got.device.type == "cpu" and set(expected.tolist()) == {0.0, 2.0}
    assert torch.equal(got, expected)


def test_layer_made_on_meta_device_then_to_empty_trains():
    with torch.device("meta"):
        net = torch.nn.Sequential(torch.nn.Linear(4, 4), ct.Dropout(0.5, seed=3))
    net.to_empty(device="cpu")
    assert net(torch.ones(2, 4)).shape == (2, 4) and net[1].calls == 1


# --- torch.utils.checkpoint ---------------------------------------------------------------------
def checkpointed_gradients(seed, use_reentrant):
    from torch.utils.checkpoint import checkpoint

    torch.manual_seed(0)
    linear = torch.nn.Linear(50, 50)
    x = torch.randn(4, 50, requires_grad=True)
    grads = []
    for wrap in (False, True):
        layer = ct.Dropout(0.5, seed=seed)

        def f(t, layer=layer):
            return layer(linear(t)).pow(2)

        torch.manual_seed(1)
        y = checkpoint(f, x, use_reentrant=use_reentrant) if wrap else f(x)
        y.sum().backward()
        grads.append(x.grad)
        x.grad = None
    return grads


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_recomputes_the_same_mask_with_seed_none(use_reentrant):
    plain, checkpointed = checkpointed_gradients(None, use_reentrant)
    assert torch.equal(plain, checkpointed)


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_of_a_seeded_layer_is_an_error_not_a_wrong_gradient(use_reentrant):
    # The recomputation took the next call number: another mask, a wrong gradient, no error.
    with pytest.raises(RuntimeError, match="checkpoint"):
        checkpointed_gradients(7, use_reentrant)


@pytest.mark.parametrize("bad", ["a", 1.5, b"1"])
def test_seed_type_error_names_what_cdrop_torch_accepts(bad):
    # cdrop.torch takes torch Generators, not numpy ones: the message must say so
    msg = r"seed must be an int in \[0, 2\*\*64\), a torch\.Generator or None, got"
    with pytest.raises(TypeError, match=msg) as info:
        ct.dropout(torch.ones(3), 0.5, seed=bad)
    assert "numpy" not in str(info.value)
    with pytest.raises(TypeError, match="torch.Generator"):
        ct.Dropout(seed=bad)


def test_import_without_torch_names_the_extra(tmp_path):
    # a child process in which torch cannot be imported
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import cdrop.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cdrop.torch needs PyTorch" in out.stdout and ".[torch]" in out.stdout
