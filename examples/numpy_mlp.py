"""A NumPy MLP with cdrop.Dropout, trained on scikit-learn's bundled digits data set.

    python examples/numpy_mlp.py [--steps 600] [--out DIR] [--seed 0] [--threads 1]

The network is 64-512-512-10 (ReLU), with dropout (p = 0.2) after each hidden layer, trained
with Adam on mini-batches of 128 of the 1,437 training images (8x8 digits, no download); the
other 360 are the validation set.  It is trained three times from the same initial weights and
batches:

  * without dropout,
  * with `cdrop.Dropout` (`train()` / `eval()`, `layer(x)` forward, `layer.backward(grad)`,
    which recomputes the mask from a 64-bit seed instead of storing it),
  * with the textbook NumPy dropout (a float64 uniform per element, a bool mask kept for the
    backward pass: the same code as `cdrop._bench.textbook_dropout`, which the `cdrop` command
    compares with).

It writes DIR/numpy_mlp.png (training loss and validation accuracy over the steps, with and
without dropout) and prints the final numbers and the time spent inside the dropout layers
(forward plus backward, summed over the training run) with cdrop and with the textbook code.
The dropout timings are perf_counter sums over the same run on a possibly shared machine:
compare the ratio, not the absolute times.  cdrop runs on one thread unless --threads says
otherwise (see the comment in main: OpenBLAS's spinning threads and a second OpenMP thread
compete for the cores right after each matmul).
"""
import argparse
import time
from pathlib import Path

import numpy as np

import cdrop

REPO = Path(__file__).resolve().parent.parent
HIDDEN = 512
BATCH = 128
P = 0.2


class TextbookDropout:
    """Dropout as NumPy tutorials write it, with the same interface as cdrop.Dropout."""

    def __init__(self, p):
        self.p = p
        self.training = True
        self._mask = None

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        if not self.training:
            return x
        keep = 1.0 - self.p
        # np.random.rand, as in cdrop._bench.textbook_dropout; the mask is kept for backward
        self._mask = np.random.rand(*x.shape) < keep
        out = x * self._mask
        out /= keep
        return out

    def backward(self, grad):
        if not self.training:
            return grad
        out = grad * self._mask
        out /= 1.0 - self.p
        return out


class Timed:
    """Wraps a dropout layer and sums the seconds spent in its forward and backward calls."""

    def __init__(self, layer):
        self.layer = layer
        self.seconds = 0.0

    def train(self, mode=True):
        self.layer.train(mode)

    def eval(self):
        self.layer.eval()

    def __call__(self, x):
        t0 = time.perf_counter()
        y = self.layer(x)
        self.seconds += time.perf_counter() - t0
        return y

    def backward(self, grad):
        t0 = time.perf_counter()
        g = self.layer.backward(grad)
        self.seconds += time.perf_counter() - t0
        return g


class MLP:
    """Linear-ReLU-dropout twice, then a linear layer; backward by hand, Adam updates."""

    def __init__(self, sizes, dropouts, rng):
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            w = rng.standard_normal((fan_in, fan_out)).astype(np.float32) * np.sqrt(2 / fan_in)
            self.params += [w, np.zeros(fan_out, dtype=np.float32)]
        self.dropouts = dropouts  # one per hidden layer, or None
        self.m = [np.zeros_like(a) for a in self.params]
        self.v = [np.zeros_like(a) for a in self.params]
        self.t = 0

    def train(self, mode=True):
        for d in self.dropouts:
            if d is not None:
                d.train(mode)

    def forward(self, x):
        self.cache = []
        h = x
        n_layers = len(self.params) // 2
        for i in range(n_layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            self.cache.append(h)
            h = h @ w + b
            if i < n_layers - 1:
                h = np.maximum(h, 0)
                if self.dropouts[i] is not None:
                    h = self.dropouts[i](h)
        return h

    def backward(self, grad_logits):
        grads = [None] * len(self.params)
        g = grad_logits
        n_layers = len(self.params) // 2
        for i in reversed(range(n_layers)):
            h_in = self.cache[i]
            grads[2 * i] = h_in.T @ g
            grads[2 * i + 1] = g.sum(axis=0)
            if i == 0:
                break
            g = g @ self.params[2 * i].T
            if self.dropouts[i - 1] is not None:
                g = self.dropouts[i - 1].backward(g)
            g = g * (h_in > 0)  # ReLU: h_in is the (dropped) ReLU output, > 0 where it passed
        return grads

    def adam_step(self, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.t += 1
        for a, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            a -= lr * (m / (1 - b1**self.t)) / (np.sqrt(v / (1 - b2**self.t)) + eps)


def softmax_xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(len(y)), y].mean()
    grad = np.exp(logp)
    grad[np.arange(len(y)), y] -= 1
    return float(loss), (grad / len(y)).astype(np.float32)


def load_data(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)


def train(kind, data, steps, seed, eval_every):
    """Train one network; returns its curves and the seconds spent in dropout."""
    x_tr, x_va, y_tr, y_va = data
    if kind == "none":
        dropouts = [None, None]
    elif kind == "cdrop":
        # seeded layers: the run is reproducible (each call draws a new mask from the seed)
        dropouts = [Timed(cdrop.Dropout(P, seed=seed + i)) for i in range(2)]
    else:
        np.random.seed(seed)  # the textbook code draws from NumPy's legacy global generator
        dropouts = [Timed(TextbookDropout(P)) for _ in range(2)]
    net = MLP([x_tr.shape[1], HIDDEN, HIDDEN, 10], dropouts, np.random.default_rng(seed))
    batches = np.random.default_rng(seed + 100)  # the same batches for every kind
    curve = {"step": [], "train_loss": [], "val_acc": []}
    losses = []
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = batches.integers(0, len(x_tr), BATCH)
        net.train(True)
        loss, grad = softmax_xent(net.forward(x_tr[idx]), y_tr[idx])
        net.adam_step(net.backward(grad))
        losses.append(loss)
        if step % eval_every == 0 or step == steps:
            net.train(False)  # eval(): dropout is the identity
            val_acc = float((net.forward(x_va).argmax(axis=1) == y_va).mean())
            curve["step"].append(step)
            curve["train_loss"].append(float(np.mean(losses)))
            curve["val_acc"].append(val_acc)
            losses = []
    elapsed = time.perf_counter() - t0
    dropout_s = sum(d.seconds for d in dropouts if d is not None)
    return curve, elapsed, dropout_s


def plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    styles = {"none": ("no dropout", "tab:gray"), "cdrop": ("cdrop.Dropout(0.2)", "tab:blue")}
    for kind, (label, color) in styles.items():
        c = curves[kind]
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
    fig.suptitle("NumPy MLP 64-512-512-10 on sklearn digits", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "examples",
                    help="folder for numpy_mlp.png (default: build/examples in the repository)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the data split, weights, batches and masks (default 0)")
    ap.add_argument("--threads", type=int, default=1,
                    help="cdrop's threads (default 1: see this script's docstring)")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("argument --steps: must be >= 1")
    # One thread by default: a 128x512 activation (65,536 elements) is just at the size where
    # cdrop starts a second thread, and right after a matmul OpenBLAS's worker threads are
    # still spinning on the cores, so a second OpenMP thread waits for a time slice.  Measured
    # on a shared 2-core VM: 0.40 ms of dropout per step with 1 thread, 2.9 ms with 2.
    cdrop.set_num_threads(args.threads)
    data = load_data(args.seed)
    eval_every = max(1, args.steps // 30)
    curves, times = {}, {}
    for kind in ("none", "cdrop", "textbook"):
        curves[kind], elapsed, dropout_s = train(kind, data, args.steps, args.seed, eval_every)
        times[kind] = (elapsed, dropout_s)
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "numpy_mlp.png"
    plot(curves, png)

    print(f"numpy_mlp: {args.steps} steps, batch {BATCH}, hidden {HIDDEN}, p = {P}, "
          f"{len(data[0])} training and {len(data[1])} validation images, "
          f"cdrop threads {args.threads}")
    for kind in ("none", "cdrop", "textbook"):
        c = curves[kind]
        print(f"val_accuracy[{kind}]: {c['val_acc'][-1]:.4f}")
        print(f"train_loss[{kind}]: {c['train_loss'][-1]:.4f}")
    per_step = 1e3 / args.steps
    print(f"dropout_ms_per_step[cdrop]: {times['cdrop'][1] * per_step:.4f}")
    print(f"dropout_ms_per_step[textbook]: {times['textbook'][1] * per_step:.4f}")
    print(f"dropout_speedup: {times['textbook'][1] / times['cdrop'][1]:.1f}")
    print(f"dropout_share_of_step[cdrop]: {times['cdrop'][1] / times['cdrop'][0]:.3f}")
    print(f"dropout_share_of_step[textbook]: {times['textbook'][1] / times['textbook'][0]:.3f}")
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
