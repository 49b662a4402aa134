"""Time the official SR-GNN code's training steps with and without the ``np.array(A)`` fix.

The official ``forward`` (CRIPAC-DIG/SR-GNN ``pytorch_code/model.py``) turns the batch's adjacency
matrices, a Python list of ``[n, 2n]`` numpy arrays from ``Data.get_slice``, into a tensor with
``torch.Tensor(A)``, which converts element by element (PyTorch warns that it is slow). The fix
stacks them first: ``torch.Tensor(np.array(A))``. This script loads the official ``utils.py`` and
``model.py`` from a checkout you give (they are not part of this repository) and times, side by side
on the same batches in alternating rounds, full training steps (get_slice, forward, cross-entropy,
backward, Adam) of

* ``list``: the official code as published;
* ``array``: the same, with ``get_slice``'s ``A`` stacked by ``np.array`` before ``forward`` sees it
  (the one-line fix; the values are identical).

Prints milliseconds per step, their ratio, and the share of each step spent building the tensor.

    python benchmarks/bench_official_srgnn_tensor_a.py --srgnn SR-GNN/pytorch_code \\
        --data /work/runs/paper/ml100k/seed0 --batches 10 --rounds 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pickle
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _step(official, model, data, rows) -> float:
    start = time.perf_counter()
    model.optimizer.zero_grad()
    targets, scores = official.forward(model, rows, data)
    loss = model.loss_function(scores, torch.as_tensor(np.asarray(targets), dtype=torch.long) - 1)
    loss.backward()
    model.optimizer.step()
    return time.perf_counter() - start


def _conversion_seconds(data, rows, stacked: bool) -> float:
    _, A, *_ = data.get_slice(rows)
    start = time.perf_counter()
    torch.Tensor(np.array(A) if stacked else A).float()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--srgnn", required=True, help="the official pytorch_code folder (utils.py, model.py)")
    p.add_argument("--data", required=True, help="prepared folder: train.txt and stats.json (prepare_data)")
    p.add_argument("--batches", type=int, default=10, help="batches per variant per round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    utils = _load(Path(args.srgnn) / "utils.py", "srgnn_utils")
    official = _load(Path(args.srgnn) / "model.py", "srgnn_model")
    with open(Path(args.data) / "train.txt", "rb") as f:
        train = pickle.load(f)
    n_node = json.loads((Path(args.data) / "stats.json").read_text())["items"] + 1
    opt = SimpleNamespace(hiddenSize=100, batchSize=args.batch_size, nonhybrid=False, step=1, lr=1e-3, l2=1e-5)
    opt.lr_dc_step, opt.lr_dc = 3, 0.1
    torch.manual_seed(0)
    np.random.seed(0)
    model = official.SessionGraph(opt, n_node)
    published = utils.Data(train, shuffle=True)
    fixed = utils.Data(train, shuffle=True)
    raw_slice = fixed.get_slice

    def stacked_slice(i):
        alias, A, items, mask, targets = raw_slice(i)
        return alias, np.array(A), items, mask, targets

    fixed.get_slice = stacked_slice
    times = {"list": [], "array": []}
    convert = {"list": [], "array": []}
    for r in range(args.rounds):
        np.random.seed(r)
        slices = published.generate_batch(args.batch_size)[: args.batches]
        for rows in slices:
            for name, data in (("list", published), ("array", fixed)):
                # both variants see the same rows: copy the published order into the fixed loader
                fixed.inputs, fixed.mask, fixed.targets = published.inputs, published.mask, published.targets
                times[name].append(_step(official, model, data, rows))
                convert[name].append(_conversion_seconds(published, rows, name == "array"))
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
    share = {k: statistics.median(convert[k]) * 1000 / ms[k] for k in ms}
    lengths = [len(s) for s in train[0]]
    print(
        f"{args.data}: {len(lengths)} train rows, mean input length {np.mean(lengths):.1f}, "
        f"max {max(lengths)}; {args.rounds} rounds x {args.batches} batches of {args.batch_size}, "
        f"{args.threads} thread(s)"
    )
    for k in ("list", "array"):
        print(f"  {k:5s}: {ms[k]:8.1f} ms/step (tensor from A: {share[k]:.0%} of the step)")
    print(f"  ratio list/array: {ms['list'] / ms['array']:.2f}x")


if __name__ == "__main__":
    main()
