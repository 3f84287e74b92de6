#!/usr/bin/env python3
"""PyTorch baseline for docs/results.md: the time to train one model of astra-dist's presets
with the same network and recipe, on one CPU thread. PyTorch is no dependency of astra-dist:
run this in a virtualenv that has torch (`pip install torch`).

  python3 launch/torch-baseline.py [--setting mnist|mnist-cnn|all] [--runs 3] [--mnist DIR]

`mnist`: MLP 784-512-256-128-10, 6,144 images, batch 64, 20 epochs, SGD lr 0.03, momentum 0.9,
wd 1e-3. `mnist-cnn`: conv 5x5 1->8 pad 2, ReLU, max-pool 2, conv 5x5 8->16 pad 2, ReLU,
max-pool 2, flatten, linear 784->10; 4,096 images, batch 64, 5 epochs, lr 0.05, momentum 0.9,
wd 1e-3. Each epoch reshuffles; the last batch is partial. Prints one JSON line per setting
(median wall and CPU seconds per model over the runs, and the half-data time of an LDS
retraining).
"""
import argparse, gzip, json, os, statistics, struct, time

import torch
import torch.nn as nn

SETTINGS = {
    "mnist": dict(train=6144, batch=64, epochs=20, lr=0.03, momentum=0.9, wd=1e-3),
    "mnist-cnn": dict(train=4096, batch=64, epochs=5, lr=0.05, momentum=0.9, wd=1e-3),
}


def network(setting):
    if setting == "mnist":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(784, 10))


def mnist(directory, count):
    """The first `count` training images (pixel/255, standardised per pixel) and labels."""
    with gzip.open(os.path.join(directory, "train-images-idx3-ubyte.gz")) as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        x = torch.frombuffer(bytearray(f.read(count * rows * cols)), dtype=torch.uint8)
    with gzip.open(os.path.join(directory, "train-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        y = torch.frombuffer(bytearray(f.read(count)), dtype=torch.uint8).long()
    x = x.float().view(count, rows * cols) / 255
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    return x, y


def train(setting, x, y, seed):
    r = SETTINGS[setting]
    torch.manual_seed(seed)
    net = network(setting)
    if setting == "mnist-cnn":
        x = x.view(-1, 1, 28, 28)
    opt = torch.optim.SGD(net.parameters(), lr=r["lr"], momentum=r["momentum"], weight_decay=r["wd"])
    loss = nn.CrossEntropyLoss()
    n = x.shape[0]
    for _ in range(r["epochs"]):
        order = torch.randperm(n)
        for start in range(0, n, r["batch"]):
            idx = order[start:start + r["batch"]]
            opt.zero_grad(set_to_none=True)
            loss(net(x[idx]), y[idx]).backward()
            opt.step()
    return net


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--setting", default="all", choices=["all", *SETTINGS])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--mnist", default=os.path.join(here, "..", "..", "shared", "data", "mnist"))
    a = p.parse_args()
    torch.set_num_threads(1)
    for setting in (SETTINGS if a.setting == "all" else [a.setting]):
        x, y = mnist(a.mnist, SETTINGS[setting]["train"])
        half = x.shape[0] // 2
        full, cpu, halves = [], [], []
        for seed in range(a.runs):
            t, c = time.perf_counter(), time.process_time()
            train(setting, x, y, seed)
            full.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
            t = time.perf_counter(); train(setting, x[:half], y[:half], seed); halves.append(time.perf_counter() - t)
        # CPU seconds as well as wall: on a shared machine the wall time includes waiting.
        print(json.dumps(dict(setting=setting, torch=torch.__version__, threads=torch.get_num_threads(), runs=a.runs,
                              secondsPerModel=full, medianSeconds=statistics.median(full), cpuSecondsPerModel=cpu,
                              medianCPUSeconds=statistics.median(cpu), halfDataMedianSeconds=statistics.median(halves))), flush=True)


if __name__ == "__main__":
    main()
