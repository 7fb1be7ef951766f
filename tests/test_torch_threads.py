"""cdrop.torch with torch's threads: the intra-op thread setting, one OpenMP runtime shared
with torch, Python threads alternating matmuls and dropout, DataLoader workers (fork)."""
import sys

import pytest

from helpers import run_python

torch = pytest.importorskip("torch")
import cdrop.torch as ct  # noqa: E402

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def recorded_threads(monkeypatch):
    seen = []
    apply = ct._apply

    def recording(src, dst, seed, offset, p, num_threads, *rest):
        seen.append(num_threads)
        return apply(src, dst, seed, offset, p, num_threads, *rest)

    monkeypatch.setattr(ct, "_apply", recording)
    before = torch.get_num_threads()
    yield seen
    torch.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_torch_set_num_threads_is_the_thread_count(recorded_threads, n):
    torch.set_num_threads(n)
    x = torch.randn(300_000)
    ct.dropout(x, 0.5)
    ct.dropout(x.requires_grad_(), 0.5, offset=1).sum().backward()
    ct.Dropout(0.5)(x)
    assert recorded_threads == [n] * 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernels_run_on_the_tensors_own_memory(monkeypatch, dtype):
    seen = []
    apply = ct._apply

    def recording(src, dst, *args):
        seen.append((src.__array_interface__["data"][0], dst.__array_interface__["data"][0]))
        return apply(src, dst, *args)

    monkeypatch.setattr(ct, "_apply", recording)
    x = torch.randn(40, 300).to(dtype)[::2].t()  # strided and transposed: no copy either
    y = ct.dropout(x, 0.5, seed=1)
    ct.dropout(x, 0.5, inplace=True, seed=1)
    assert seen == [(x.data_ptr(), y.data_ptr()), (x.data_ptr(), x.data_ptr())]


def test_small_tensors_run_on_one_thread(recorded_threads):
    torch.set_num_threads(2)
    ct.dropout(torch.randn(1000), 0.5)
    assert recorded_threads == [1]


@linux_only
@pytest.mark.parametrize("first", ["torch", "cdrop"])
def test_torch_and_cdrop_share_one_openmp_runtime_whichever_is_imported_first(tmp_path, first):
    # torch's wheel ships its own libgomp.so.1 and cdrop links the system's, under the same
    # soname: the dynamic loader reuses the one loaded first, so there is one runtime.
    second = "cdrop.torch" if first == "torch" else "torch"
    proc = run_python(f"""
        import {first}, {second}, cdrop.torch, torch
        torch.mm(torch.randn(256, 256), torch.randn(256, 256))
        cdrop.torch.dropout(torch.randn(300_000), 0.5)
        print(len({{l.split()[-1] for l in open("/proc/self/maps") if "libgomp" in l}}))
        """, tmp_path, check=True)
    assert proc.stdout.strip() == "1"


@linux_only
def test_alternating_matmuls_and_dropout_in_threads_neither_crash_nor_oversubscribe(tmp_path):
    # Two Python threads alternate torch matmuls (torch's OpenMP) and cdrop calls (cdrop's) on
    # 2 threads each: every OpenMP team is reused, so the process never holds more threads than
    # the Python threads plus one worker per Python thread that opened a parallel region.
    proc = run_python("""
        import os, threading, torch, cdrop.torch as ct
        torch.set_num_threads(2)
        a = torch.randn(384, 384)
        x = torch.randn(400_000)
        counts = []

        def work():
            for _ in range(40):
                torch.mm(a, a)
                ct.dropout(x, 0.5)
                ct.dropout(x.clone(), 0.3, inplace=True)
                counts.append(len(os.listdir("/proc/self/task")))

        work()  # the main thread's teams exist before the workers start
        base = len(os.listdir("/proc/self/task"))
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(base, max(counts))
        """, tmp_path, check=True, timeout=300)
    base, peak = map(int, proc.stdout.split())
    # base: the main thread and its team; each Python thread adds itself and one team worker
    assert peak <= base + 2 * 2, proc.stdout


def test_training_with_fork_dataloader_workers_does_not_hang(tmp_path):
    proc = run_python("""
        import torch, cdrop.torch as ct
        from torch.utils.data import DataLoader, Dataset

        class Data(Dataset):
            def __len__(self):
                return 64

            def __getitem__(self, i):
                # the workers (fork()ed children) run cdrop too, after the parent used OpenMP
                x = ct.dropout(torch.randn(200_000), 0.1)[:32]
                return x, torch.tensor(i % 4)

        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(32, 256), ct.Dropout(0.5),
                                    torch.nn.ReLU(), torch.nn.Linear(256, 4))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.randn(300_000 // 32, 32)).sum().backward()  # OpenMP used before fork
        loader = DataLoader(Data(), batch_size=8, num_workers=2,
                            multiprocessing_context="fork")
        for epoch in range(2):
            for x, y in loader:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                ct.dropout(torch.randn(300_000), 0.5)  # threads in the parent meanwhile
        print("done")
        """, tmp_path, check=True, timeout=240)
    assert proc.stdout.strip() == "done"
