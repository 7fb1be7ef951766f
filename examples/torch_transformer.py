"""A small character-level transformer trained on CPU, with torch's dropout and with cdrop's.

    python examples/torch_transformer.py [--steps 150] [--out DIR] [--context 256] [--seed 0]

The model is written here: token and position embeddings, pre-norm blocks of causal
self-attention and a 4x MLP, with an explicit `nn.Dropout` on the attention probabilities (a
(batch, heads, T, T) tensor, which is where dropout costs most), on both residual branches and
inside the MLP.  It trains on examples/data/garden.txt, 300 KB of text that the project
generates from a small grammar (examples/data/make_text.py).

Two copies of the same initial model are trained side by side on the same batches: one with
`torch.nn.Dropout`, one where `cdrop.torch.replace_dropout` swapped every `nn.Dropout` for
`cdrop.torch.Dropout` (same p, same training mode).  Their steps alternate, so that a slow
phase of a shared machine slows both alike; the step time reported is the median.

Memory, two ways:

  * "autograd holds": the bytes of the tensors that autograd saves for backward during one
    forward pass, tallied with `torch.autograd.graph.saved_tensors_hooks` (each storage
    counted once).  This is exact and deterministic, and it is where dropout's memory goes:
    torch saves a mask per dropout (one byte per element), cdrop saves none (it recomputes the
    mask from its seed).  tracemalloc cannot see torch's CPU allocations (they are not Python
    objects), so it is no use here.
  * "peak RSS": the growth of the process's peak resident set (VmHWM) over its first two
    training steps, each variant in a fresh Python process, so that neither sees pages the
    other left in the allocator's cache.  This includes the temporaries of the forward and
    backward passes and the optimizer's state (the same for both): what the machine needs.

It writes DIR/torch_transformer.png (the training and validation loss of both, their step
times and their memory) and prints the numbers in `name[variant]: value` lines.
"""
import argparse
import copy
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parent.parent
TEXT = Path(__file__).resolve().parent / "data" / "garden.txt"
VARIANTS = ("torch", "cdrop")


class Attention(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.attn_drop = nn.Dropout(p)  # on the (batch, heads, T, T) probabilities

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = self.attn_drop(att.masked_fill(causal, float("-inf")).softmax(dim=-1))
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, heads, p)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d),
                                 nn.Dropout(p))
        self.resid_drop = nn.Dropout(p)

    def forward(self, x):
        x = x + self.resid_drop(self.attn(self.ln1(x)))
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    def __init__(self, vocab, context, d=128, heads=4, layers=2, p=0.1):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.drop = nn.Dropout(p)
        self.blocks = nn.Sequential(*[Block(d, heads, p) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, idx):
        x = self.drop(self.tok(idx) + self.pos(torch.arange(idx.shape[1])))
        return self.head(self.ln(self.blocks(x)))


def load_text():
    raw = torch.frombuffer(bytearray(TEXT.read_bytes()), dtype=torch.uint8)
    # ids 0..vocab-1 in byte order (no Python list of 300,000 ints: it would dominate the
    # peak-RSS measurement)
    chars, data = torch.unique(raw, return_inverse=True)
    data = data.long()
    split = int(0.9 * len(data))
    return data[:split], data[split:], len(chars)


def batch(data, gen, batch_size, context):
    i = torch.randint(len(data) - context - 1, (batch_size,), generator=gen)
    x = torch.stack([data[j:j + context] for j in i.tolist()])
    y = torch.stack([data[j + 1:j + 1 + context] for j in i.tolist()])
    return x, y


def build(args, vocab):
    """The two models, with the same initial weights, and their optimizers."""
    torch.manual_seed(args.seed)
    base = CharTransformer(vocab, args.context, layers=args.layers, p=args.p)
    models = {"torch": base, "cdrop": copy.deepcopy(base)}
    from cdrop.torch import replace_dropout

    replace_dropout(models["cdrop"])  # every nn.Dropout -> cdrop.torch.Dropout, in place
    opts = {k: torch.optim.AdamW(m.parameters(), lr=args.lr) for k, m in models.items()}
    return models, opts


def train_step(model, opt, x, y):
    model.train()
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


@torch.no_grad()
def val_loss(model, data, args):
    model.eval()
    gen = torch.Generator().manual_seed(1234)  # the same validation batches every time
    losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
              for x, y in (batch(data, gen, args.batch, args.context) for _ in range(2))]
    return sum(losses) / len(losses)


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
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    model.zero_grad(set_to_none=True)
    return total


def measure_rss(args, variant):
    """Peak-RSS growth over two training steps, in this (fresh) process: printed as JSON."""
    train, _, vocab = load_text()
    models, opts = build(args, vocab)
    model, opt = models[variant], opts[variant]
    gen = torch.Generator().manual_seed(args.seed)
    x, y = batch(train, gen, args.batch, args.context)
    before = peak_rss_bytes()
    for _ in range(2):
        train_step(model, opt, x, y)
    print(json.dumps({"peak_rss_growth_bytes": peak_rss_bytes() - before}))


def peak_rss_bytes():
    """This process's peak resident set: VmHWM on Linux, else ru_maxrss.

    Not ru_maxrss on Linux: a child started by fork and exec inherits its parent's ru_maxrss
    (the high-water mark of the forked copy), so a child of a process that already trained
    would report no growth at all.  VmHWM belongs to the address space and starts anew at exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # bytes on macOS, KiB elsewhere


def peak_rss(args, variant):
    cmd = [sys.executable, __file__, "--measure-rss", variant, "--context", str(args.context),
           "--batch", str(args.batch), "--layers", str(args.layers), "--p", str(args.p),
           "--seed", str(args.seed)]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_growth_bytes"]


def plot(curves, step_s, held, rss, args, path):
    """Loss curves of both, and their step time and memory side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_t, ax_m) = plt.subplots(1, 3, figsize=(11, 3.6),
                                         gridspec_kw={"width_ratios": [2.2, 0.8, 1.2]})
    colors = {"torch": "tab:red", "cdrop": "tab:blue"}
    labels = {"torch": "torch nn.Dropout", "cdrop": "cdrop.torch.Dropout"}
    for v, ls in zip(VARIANTS, ("--", "-")):
        c = curves[v]
        ax.plot(range(1, len(c["train"]) + 1), c["train"], color=colors[v], alpha=0.3, lw=0.8)
        ax.plot(c["val_step"], c["val"], color=colors[v], ls=ls, marker="o", ms=3,
                label=f"{labels[v]} (validation)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.set_title("loss (faint: training)", fontsize=9)
    ax.legend(fontsize=8)
    ax_t.bar([0, 1], [step_s[v] * 1e3 for v in VARIANTS], color=[colors[v] for v in VARIANTS])
    ax_t.set_xticks([0, 1], ["torch", "cdrop"])
    ax_t.set_title("median step time (ms)", fontsize=9)
    mem = [("autograd holds", held)] + ([("peak RSS growth", rss)] if rss else [])
    for i, (_, values) in enumerate(mem):
        for j, v in enumerate(VARIANTS):
            ax_m.bar(i + (j - 0.5) * 0.38, values[v] / 2**20, width=0.36, color=colors[v],
                     label=labels[v] if i == 0 else None)
    ax_m.set_xticks(range(len(mem)), [name for name, _ in mem])
    ax_m.set_title("memory of a training step (MiB)", fontsize=9)
    ax_m.legend(fontsize=8)
    for a in (ax, ax_t, ax_m):
        a.grid(alpha=0.3, axis="y" if a is not ax else "both")
    fig.suptitle(f"char transformer, {args.layers} layers, T = {args.context}, batch "
                 f"{args.batch}, p = {args.p}, torch threads {torch.get_num_threads()}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150, help="training steps (default 150)")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "examples",
                    help="folder for torch_transformer.png"
                         " (default: build/examples in the repository)")
    ap.add_argument("--context", type=int, default=256,
                    help="T, characters per sequence (default 256)")
    ap.add_argument("--batch", type=int, default=8, help="sequences per batch (default 8)")
    ap.add_argument("--layers", type=int, default=2, help="transformer layers (default 2)")
    ap.add_argument("--p", type=float, default=0.1, help="dropout probability (default 0.1)")
    ap.add_argument("--lr", type=float, default=3e-3, help="learning rate (default 3e-3)")
    ap.add_argument("--seed", type=int, default=0,
                    help="seed of the weights, batches and masks (default 0)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's default)")
    ap.add_argument("--no-rss", action="store_true",
                    help="skip the peak-RSS measurement (two extra Python processes)")
    ap.add_argument("--measure-rss", choices=VARIANTS, help=argparse.SUPPRESS)
    return ap


def main(argv=None):
    ap = parser()
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error("argument --steps: must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)  # cdrop.torch follows torch's setting
    if args.measure_rss:
        measure_rss(args, args.measure_rss)
        return 0

    train, val, vocab = load_text()
    models, opts = build(args, vocab)
    gen = torch.Generator().manual_seed(args.seed)
    eval_every = max(2, args.steps // 10)
    curves = {v: {"train": [], "val_step": [], "val": [], "time": []} for v in VARIANTS}
    for step in range(1, args.steps + 1):
        x, y = batch(train, gen, args.batch, args.context)
        for v in VARIANTS:  # alternate: a slow phase of the machine hits both alike
            t0 = time.perf_counter()
            curves[v]["train"].append(train_step(models[v], opts[v], x, y))
            curves[v]["time"].append(time.perf_counter() - t0)
        if step % eval_every == 0 or step == args.steps:
            for v in VARIANTS:
                curves[v]["val_step"].append(step)
                curves[v]["val"].append(val_loss(models[v], val, args))
    x, y = batch(train, gen, args.batch, args.context)
    held = {v: saved_bytes(models[v], x, y) for v in VARIANTS}
    rss = {} if args.no_rss else {v: peak_rss(args, v) for v in VARIANTS}
    # the first steps warm up allocators and threads: leave them out of the median if we can
    skip = 2 if args.steps > 4 else 0
    step_s = {v: statistics.median(curves[v]["time"][skip:]) for v in VARIANTS}
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "torch_transformer.png"
    plot(curves, step_s, held, rss, args, png)

    attn = args.batch * 4 * args.context * args.context
    print(f"torch_transformer: {args.steps} steps, {args.layers} layers, d 128, 4 heads, "
          f"T = {args.context}, batch {args.batch}, p = {args.p}, torch threads "
          f"{torch.get_num_threads()}; attention probabilities {attn:,} elements per layer")
    for v in VARIANTS:
        print(f"steps_per_s[{v}]: {1 / step_s[v]:.3f}")
    print(f"speedup: {step_s['torch'] / step_s['cdrop']:.2f}")
    for v in VARIANTS:
        print(f"autograd_saved_MiB[{v}]: {held[v] / 2**20:.1f}")
    for v in rss:
        print(f"peak_rss_growth_MiB[{v}]: {rss[v] / 2**20:.1f}")
    for v in VARIANTS:
        print(f"train_loss[{v}]: {statistics.mean(curves[v]['train'][-eval_every:]):.4f}")
        print(f"val_loss[{v}]: {curves[v]['val'][-1]:.4f}")
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
