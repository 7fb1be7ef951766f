"""cdrop.torch: values (bit for bit against cdrop.dropout), layouts, seeds, errors, the module
and replace_dropout, copies and torch.save."""
import copy
import io

import numpy as np
import pytest

from helpers import run_python

torch = pytest.importorskip("torch")
import cdrop  # noqa: E402
import cdrop.torch as ct  # noqa: E402

F = torch.nn.functional


def numpy_dropout(t, p, seed, offset=0):
    return torch.from_numpy(cdrop.dropout(t.numpy(), p, seed=seed, offset=offset))


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    ints = {4: torch.int32, 8: torch.int64, 2: torch.int16}[a.element_size()]
    assert torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))


def layouts(dtype):
    base = torch.randn(37, 300, generator=torch.Generator().manual_seed(0)).to(dtype)
    return {
        "contiguous": base,
        "transposed": base.t(),
        "strided": base[::2, 1::3],
        "channels_last": torch.randn(3, 5, 7, 11).to(dtype, memory_format=torch.channels_last),
        "permuted": torch.randn(4, 5, 6).to(dtype).permute(2, 0, 1),
        "0-d": torch.tensor(1.5, dtype=dtype),
        "empty": torch.empty(0, 3, dtype=dtype),
        "large": torch.randn(300_000).to(dtype),  # threads
        "huge": torch.randn(2, 600_000).to(dtype),  # >= 4 MiB: a result allocated by NumPy
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", list(layouts(torch.float32)))
@pytest.mark.parametrize("p", [0.1, 0.5, 0.93])
def test_same_bits_as_numpy_for_any_layout(dtype, layout, p):
    t = layouts(dtype)[layout]
    for seed, offset in [(0, 0), (12345, 77), (2**64 - 1, 2**40)]:
        assert_same_bits(ct.dropout(t, p, seed=seed, offset=offset),
                         numpy_dropout(t, p, seed, offset))


@pytest.mark.parametrize("layout", ["contiguous", "strided", "large"])
def test_inplace_writes_the_tensors_own_memory_with_the_same_bits(layout):
    t = layouts(torch.float32)[layout].clone()
    expected = numpy_dropout(t, 0.3, 9)
    ptr, version = t.data_ptr(), t._version
    assert ct.dropout(t, 0.3, True, True, seed=9) is t
    assert t.data_ptr() == ptr and t._version > version
    assert_same_bits(t, expected)


@pytest.mark.parametrize("layout", ["channels_last", "permuted", "transposed"])
def test_out_of_place_result_keeps_the_memory_format(layout):
    t = layouts(torch.float32)[layout]
    y = ct.dropout(t, 0.5, seed=1)
    assert y.stride() == F.dropout(t, 0.5).stride() == t.stride()


def test_eval_mode_and_p_zero_return_the_input_as_torch_does():
    t = torch.randn(10)
    assert F.dropout(t, 0.5, training=False) is t and ct.dropout(t, 0.5, False) is t
    assert F.dropout(t, 0.0) is t and ct.dropout(t, 0.0) is t
    assert ct.dropout(t, 0.0, inplace=True) is t


def test_p_one_gives_positive_zeros_even_for_nan():
    t = torch.tensor([1.0, float("nan"), -float("inf"), -2.0])
    y = ct.dropout(t, 1.0)
    assert torch.equal(y.view(torch.int32), torch.zeros(4, dtype=torch.int32))
    assert torch.equal(t[3], torch.tensor(-2.0))  # out of place: input untouched


def test_seed_none_follows_torch_manual_seed():
    t = torch.ones(1000)
    torch.manual_seed(3)
    a, b = ct.dropout(t), ct.dropout(t)
    torch.manual_seed(3)
    assert torch.equal(a, ct.dropout(t)) and torch.equal(b, ct.dropout(t))
    assert not torch.equal(a, b)


def test_seed_generator_is_drawn_from_and_leaves_the_default_alone():
    t = torch.ones(1000)
    state = torch.get_rng_state()
    a = ct.dropout(t, seed=torch.Generator().manual_seed(5))
    b = ct.dropout(t, seed=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
    g = torch.Generator().manual_seed(5)
    assert not torch.equal(ct.dropout(t, seed=g), ct.dropout(t, seed=g))


@pytest.mark.parametrize("device", ["meta"])
def test_non_cpu_tensor_is_refused_naming_the_device(device):
    with pytest.raises(ValueError, match=f"device '{device}'.*CPU tensors"):
        ct.dropout(torch.ones(3, device=device), 0.5)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.uint8, torch.bool,
                                   torch.complex64])
def test_integer_bool_complex_tensors_are_a_type_error(dtype):
    with pytest.raises(TypeError, match="input has unsupported dtype"):
        ct.dropout(torch.ones(3, dtype=dtype), 0.5)


@pytest.mark.parametrize("kwargs, kind, match", [
    ({"p": 1.5}, ValueError, "p must be a probability"),
    ({"p": float("nan")}, ValueError, "p must be a probability"),
    ({"p": "0.5"}, TypeError, "p must be a real number"),
    ({"training": 1}, TypeError, "training must be a bool"),
    ({"inplace": None}, TypeError, "inplace must be a bool"),
    ({"seed": -1}, ValueError, "seed must be in"),
    ({"seed": 2**64}, ValueError, "seed must be in"),
    ({"seed": 1.5}, TypeError, "seed must be"),
    ({"seed": np.random.default_rng(0)}, TypeError, "seed must be"),
    ({"offset": -1}, ValueError, "offset must be >= 0"),
    ({"offset": 2**64 - 2}, ValueError, "offset \\+ size"),
    ({"offset": 1.0}, TypeError, "offset must be"),
])
def test_bad_arguments_raise_as_cdrop_dropout_does_and_write_nothing(kwargs, kind, match):
    t = torch.ones(3)
    state = torch.get_rng_state()
    args = {"p": 0.5, **kwargs}
    with pytest.raises(kind, match=match):
        ct.dropout(t, args.pop("p"), inplace=args.pop("inplace", True), **args)
    assert torch.equal(t, torch.ones(3)) and torch.equal(torch.get_rng_state(), state)


def test_inplace_on_an_expanded_tensor_is_refused_as_by_torch():
    t = torch.ones(1, 3).expand(4, 3)
    with pytest.raises(RuntimeError, match="more than one element"):
        F.dropout(t, 0.5, inplace=True)
    with pytest.raises(ValueError, match="input has overlapping elements"):
        ct.dropout(t, 0.5, inplace=True)
    assert torch.equal(t, torch.ones(4, 3))


def test_inference_mode_first_then_normal_calls():
    # a fresh thread: its first key draw happens in inference mode
    import threading

    errors = []

    def run():
        try:
            with torch.inference_mode():
                ct.dropout(torch.ones(10), 0.5, inplace=True)
            ct.dropout(torch.ones(10), 0.5)
            x = torch.randn(3, requires_grad=True)
            with torch.no_grad():
                ct.dropout(x, 0.5, inplace=True)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errors == []


def test_input_that_is_not_a_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        ct.dropout(np.ones(3), 0.5)


def test_module_matches_torch_dropouts_interface():
    m = ct.Dropout(0.25, True)
    ref = torch.nn.Dropout(0.25, True)
    assert repr(m) == repr(ref) and m.extra_repr() == ref.extra_repr()
    assert list(m.parameters()) == [] and list(m.buffers()) == [] and m.state_dict() == {}
    assert m.training
    t = torch.randn(50)
    assert m.eval()(t) is t
    m.train()
    y = m(t.clone())
    assert ((y == 0) | (y == t * torch.tensor(1 / 0.75))).all() and (y == 0).any()


def test_module_with_int_seed_repeats_cdrop_dropouts_masks_call_by_call():
    x = np.linspace(1, 2, 500, dtype=np.float32)
    ours, theirs = ct.Dropout(0.5, seed=11), cdrop.Dropout(0.5, seed=11)
    for _ in range(3):
        assert_same_bits(ours(torch.from_numpy(x)), torch.from_numpy(theirs(x)))


def test_module_arguments_are_checked():
    with pytest.raises(ValueError, match="p must be"):
        ct.Dropout(2.0)
    with pytest.raises(TypeError, match="inplace must be a bool"):
        ct.Dropout(0.5, 1)
    with pytest.raises(ValueError, match="seed must be in"):
        ct.Dropout(seed=-3)


def test_replace_dropout_keeps_p_inplace_and_mode_and_returns_the_module():
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.Dropout(0.1),
        torch.nn.Sequential(torch.nn.Dropout(0.7, inplace=True)),
    )
    net[2].eval()
    assert ct.replace_dropout(net) is net
    a, b = net[1], net[2][0]
    assert isinstance(a, ct.Dropout) and isinstance(b, ct.Dropout)
    assert (a.p, a.inplace, a.training) == (0.1, False, True)
    assert (b.p, b.inplace, b.training) == (0.7, True, False)
    single = torch.nn.Dropout(0.3).eval()
    new = ct.replace_dropout(single)  # a top-level nn.Dropout: the replacement is returned
    assert isinstance(new, ct.Dropout) and (new.p, new.training) == (0.3, False)
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        ct.replace_dropout("net")


def test_deepcopy_and_torch_save_load_of_a_model_with_cdrop_modules():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), ct.Dropout(0.2, seed=4))
    net(torch.ones(2, 3))  # the seeded module's position moves on
    clone = copy.deepcopy(net)
    x = torch.ones(2, 3)
    assert torch.equal(clone(x), copy.deepcopy(net)(x))
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)  # weights only: loads with torch.load's default
    buf.seek(0)
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 3), ct.Dropout(0.2, seed=4))
    fresh.load_state_dict(torch.load(buf))
    assert torch.equal(fresh[0].weight, net[0].weight)
    buf = io.BytesIO()
    torch.save(net, buf)  # the whole model: the classes must be allowed, or weights_only=False
    buf.seek(0)
    with torch.serialization.safe_globals([ct.Dropout, torch.nn.Sequential, torch.nn.Linear]):
        whole = torch.load(buf)
    assert isinstance(whole[1], ct.Dropout) and torch.equal(whole(x), copy.deepcopy(net)(x))


def test_import_cdrop_imports_neither_cdrop_torch_nor_torch(tmp_path):
    proc = run_python(
        "import sys, cdrop, numpy as np; cdrop.dropout(np.ones(3), 0.5);"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.',"
        " 'cdrop.torch'))))",
        tmp_path, check=True)
    assert proc.stdout.strip() == "[]"


def test_docstring_examples_of_cdrop_torch():
    import doctest

    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    assert doctest.testmod(ct, optionflags=flags).failed == 0
    assert all("Examples" in getattr(ct, name).__doc__ for name in ct.__all__)


def test_readme_and_docs_torch_examples_run():
    """The ```python torch blocks of README.md and docs/torch.md (test_docs.py runs the plain
    ```python ones, which must not need torch)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    blocks = []
    for page in (root / "README.md", root / "docs" / "torch.md"):
        blocks += re.findall(r"```python torch\n(.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for code in blocks:
        exec(compile(code, "torch example", "exec"), {})
