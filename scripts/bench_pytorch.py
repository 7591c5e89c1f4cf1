#!/usr/bin/python3
"""bench_pytorch.py -- the paper's CNN in PyTorch, as the baseline for bench_model.

Plain nn.Module + torch.optim.SGD(lr=0.1, weight_decay=5e-4) loop on one thread
at batch 60, synthetic pixels in [0, 1) and random labels, timed like
bench/bench_model.c: 1 s warm-up, then `seconds` of steady state; then
forward-only evaluation (no_grad) the same way.

usage: /usr/bin/python3 scripts/bench_pytorch.py [seconds (3)] [batch (60)]
       /usr/bin/python3 scripts/bench_pytorch.py --reference
       /usr/bin/python3 scripts/bench_pytorch.py --epoch DATA_DIR [epochs (1)] [batch (60)]
The --reference mode prints the loss and gradient entries that
tests/test_model.c pins (byznode's flat vector is parameters_to_vector()).
The --epoch mode is PyTorch's side of the one-node epoch that
scripts/bench_model.sh times as a whole process against `byznode node
--rule standalone` on a swarm of one: it reads the Fashion-MNIST IDX files in
DATA_DIR (plain or .gz), normalises them as byznode does ((x / 255 - 0.2860) / 0.3530),
trains on the whole training set in shuffled batches (SGD lr 0.1, weight
decay 5e-4, one thread), then evaluates on the whole test set, and prints the
accuracy.
"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(512, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def measure(step, batch, nbatches, seconds):
    """samples/s of wall time, ms per step, and samples per CPU-second
    (process CPU time: the steadier figure on a shared machine)."""
    warm_end = time.perf_counter() + min(1.0, seconds)
    i = 0
    while time.perf_counter() < warm_end:
        step(i % nbatches)
        i += 1
    steps = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    while True:
        step(i % nbatches)
        i += 1
        steps += 1
        t = time.perf_counter() - start
        if t >= seconds:
            break
    cpu = time.process_time() - cpu_start
    return steps * batch / t, t * 1e3 / steps, steps * batch / cpu


def bench(seconds, batch):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    model = CNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)
    nbatches = 16
    xs = torch.rand(nbatches, batch, 1, 28, 28)
    ys = torch.randint(0, 10, (nbatches, batch))

    def train_step(k):
        opt.zero_grad()
        loss = F.cross_entropy(model(xs[k]), ys[k])
        loss.backward()
        opt.step()

    def eval_step(k):
        with torch.no_grad():
            F.cross_entropy(model(xs[k]), ys[k])

    tr, ms_tr, cpu_tr = measure(train_step, batch, nbatches, seconds)
    print(f"pytorch cnn    train (fwd+bwd+sgd) batch {batch}: {tr:9.0f} samples/s  ({ms_tr:.3f} ms/step)"
          f"  {cpu_tr:9.0f} samples/cpu-s")
    sys.stdout.flush()
    ev, ms_ev, cpu_ev = measure(eval_step, batch, nbatches, seconds)
    print(f"pytorch cnn    eval  (forward)     batch {batch}: {ev:9.0f} samples/s  ({ms_ev:.3f} ms/batch)"
          f"  {cpu_ev:9.0f} samples/cpu-s")
    print(f"pytorch {torch.__version__} threads {torch.get_num_threads()}")


def reference():
    torch.set_num_threads(1)
    model = CNN()
    d = sum(p.numel() for p in model.parameters())
    flat = torch.tensor([0.05 * math.sin(0.37 * i + 0.1) for i in range(d)], dtype=torch.float32)
    torch.nn.utils.vector_to_parameters(flat, model.parameters())
    B = 4
    x = torch.tensor([((i * 37) % 256) / 255.0 for i in range(B * 784)],
                     dtype=torch.float32).reshape(B, 1, 28, 28)
    y = torch.tensor([b % 10 for b in range(B)])
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    print(f"dim {d}")
    print(f"#define REF_LOSS {loss.item():.9g}")
    idx = [0, 7, 399, 400, 415, 416, 1000, 9999, 13247, 13248, 13250, 13259,
           20000, 45678, 78911, 78912, 78950, 79000, 80191, 80192, 80201]
    # Also the largest-magnitude entry of each tensor, so that none is all zeros.
    off = 0
    for p in model.parameters():
        n = p.numel()
        idx.append(off + int(torch.argmax(g[off:off + n].abs())))
        off += n
    print("REF_GRAD " + ", ".join(f"{{ {i}, {g[i].item():.9g} }}" for i in sorted(set(idx))))


def read_idx(path):
    """An IDX file, plain or gzip'd (path, else path + ".gz"), as a uint8 tensor."""
    import gzip
    import os
    import struct
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(dims)


def epoch(data_dir, epochs, batch):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    t0 = time.perf_counter()

    def images(name):
        x = read_idx(f"{data_dir}/{name}").float().div_(255.0)
        return x.sub_(0.2860).div_(0.3530).unsqueeze(1)

    xtr, ytr = images("train-images-idx3-ubyte"), read_idx(f"{data_dir}/train-labels-idx1-ubyte").long()
    xte, yte = images("t10k-images-idx3-ubyte"), read_idx(f"{data_dir}/t10k-labels-idx1-ubyte").long()
    model = CNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)
    t_load = time.perf_counter() - t0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(xtr.shape[0])
        for i in range(0, xtr.shape[0] - batch + 1, batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    t_train = time.perf_counter() - t0 - t_load
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, xte.shape[0], batch):
            correct += (model(xte[i:i + batch]).argmax(1) == yte[i:i + batch]).sum().item()
    t_all = time.perf_counter() - t0
    print(f"pytorch epoch: {epochs} epoch(s) on {xtr.shape[0]} images, test accuracy "
          f"{correct / xte.shape[0]:.4f}; load {t_load:.1f} s, train {t_train:.1f} s, "
          f"eval {t_all - t_load - t_train:.1f} s (after import)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--reference":
        reference()
    elif len(sys.argv) > 2 and sys.argv[1] == "--epoch":
        epoch(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1,
              int(sys.argv[4]) if len(sys.argv) > 4 else 60)
    else:
        bench(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0,
              int(sys.argv[2]) if len(sys.argv) > 2 else 60)
