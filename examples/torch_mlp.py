"""examples/numpy_mlp.py's network in PyTorch: torch's nn.Dropout, then cdrop's.

    python examples/torch_mlp.py [--steps 600] [--out DIR] [--seed 0] [--hidden 512]

A 64-512-512-10 MLP (ReLU, `nn.Dropout(0.2)` after each hidden layer), trained with Adam on
mini-batches of 128 of scikit-learn's bundled digits (1,437 training images, 360 for
validation; no download).  Two copies of the same initial model train on the same batches: one
as written, with `torch.nn.Dropout`, and one after `cdrop.torch.replace_dropout(model)`, which
swaps every `nn.Dropout` for `cdrop.torch.Dropout` in place, keeping p and the training mode.
Their steps alternate, so that a slow phase of a shared machine hits both alike; the step time
reported is the median over the steps.

Memory: the bytes of the tensors that autograd keeps between forward and backward in one
training step, tallied with `torch.autograd.graph.saved_tensors_hooks` (each storage counted
once).  That is where dropout's memory goes (torch keeps a mask per dropout, cdrop recomputes
it from a seed), and the tally is exact and repeatable.  tracemalloc cannot see torch's CPU
allocations, and at this size the process's peak RSS is dominated by torch itself
(examples/torch_transformer.py measures peak RSS too, at a size where it shows).

The two runs use different masks, so their accuracies differ by the noise of training; the
final accuracy of each is printed, with the mean of the last few evaluations.  Writes
DIR/torch_mlp.png (training loss and validation accuracy of both).
"""
import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("torch", "cdrop")
P = 0.2


def load_data(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=seed,
                                              stratify=y)
    return (torch.from_numpy(x_tr), torch.from_numpy(x_va), torch.from_numpy(y_tr),
            torch.from_numpy(y_va))


def mlp(hidden):
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(P),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(P),
                         nn.Linear(hidden, 10))


def saved_bytes(model, x, y):
    """Bytes of the tensors autograd keeps for backward in one training forward pass."""
    seen, total = set(), 0

    def pack(t):
        nonlocal total
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:  # a storage saved twice (views) is held once
            seen.add(storage.data_ptr())
            total += storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return total


def plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    styles = {"torch": ("torch nn.Dropout(0.2)", "tab:red"),
              "cdrop": ("cdrop.torch.Dropout(0.2)", "tab:blue")}
    for v, (label, color) in styles.items():
        c = curves[v]
        ax1.plot(c["step"], c["train_loss"], color=color, label=label)
        ax2.plot(c["step"], c["val_acc"], color=color, label=label)
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (mean since last point)")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation accuracy")
    ax2.set_ylim(0.85, 1.0)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("PyTorch MLP 64-512-512-10 on sklearn digits", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "examples",
                    help="folder for torch_mlp.png (default: build/examples in the repository)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the data split, weights, batches and masks (default 0)")
    ap.add_argument("--hidden", type=int, default=512, help="hidden width (default 512)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's default)")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("argument --steps: must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)  # cdrop.torch follows torch's setting
    from cdrop.torch import replace_dropout

    x_tr, x_va, y_tr, y_va = load_data(args.seed)
    torch.manual_seed(args.seed)  # the initial weights, and the masks of both dropouts
    models = {"torch": mlp(args.hidden)}
    models["cdrop"] = replace_dropout(copy.deepcopy(models["torch"]))
    opts = {v: torch.optim.Adam(m.parameters(), lr=1e-3) for v, m in models.items()}
    gen = torch.Generator().manual_seed(args.seed + 100)  # the same batches for both
    eval_every = max(1, args.steps // 30)
    curves = {v: {"step": [], "train_loss": [], "val_acc": []} for v in VARIANTS}
    losses = {v: [] for v in VARIANTS}
    times = {v: [] for v in VARIANTS}
    for step in range(1, args.steps + 1):
        idx = torch.randint(len(x_tr), (args.batch,), generator=gen)
        x, y = x_tr[idx], y_tr[idx]
        for v in VARIANTS:  # alternate: a slow phase of the machine hits both alike
            model, opt = models[v], opts[v]
            model.train()
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            times[v].append(time.perf_counter() - t0)
            losses[v].append(loss.item())
        if step % eval_every == 0 or step == args.steps:
            for v in VARIANTS:
                models[v].eval()
                with torch.no_grad():
                    acc = (models[v](x_va).argmax(1) == y_va).float().mean().item()
                curves[v]["step"].append(step)
                curves[v]["train_loss"].append(statistics.mean(losses[v]))
                curves[v]["val_acc"].append(acc)
                losses[v] = []
    idx = torch.randint(len(x_tr), (args.batch,), generator=gen)
    held = {v: saved_bytes(models[v], x_tr[idx], y_tr[idx]) for v in VARIANTS}
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "torch_mlp.png"
    plot(curves, png)

    print(f"torch_mlp: {args.steps} steps, 64-{args.hidden}-{args.hidden}-10, batch "
          f"{args.batch}, p = {P}, torch threads {torch.get_num_threads()}")
    skip = 5 if args.steps > 10 else 0  # warm-up steps, left out of the median
    step_s = {v: statistics.median(times[v][skip:]) for v in VARIANTS}
    for v in VARIANTS:
        c = curves[v]
        print(f"val_accuracy[{v}]: {c['val_acc'][-1]:.4f}")
        print(f"val_accuracy_last5[{v}]: {statistics.mean(c['val_acc'][-5:]):.4f}")
    for v in VARIANTS:
        print(f"step_ms[{v}]: {step_s[v] * 1e3:.3f}")
    print(f"speedup: {step_s['torch'] / step_s['cdrop']:.2f}")
    for v in VARIANTS:
        print(f"autograd_saved_KiB[{v}]: {held[v] / 1024:.1f}")
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
