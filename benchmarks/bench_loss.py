"""Forward+backward time of the cross-attention loss, materialised vs Gram vs auto, on the CPU.

Prints one JSON object on its last line::

    {"cores": N, "cases": [{"B", "S_a", "S_b", "d", "materialize_ms", "gram_ms", "auto_ms",
                            "speedup_auto"}, ...]}

Times are medians over repeats, all taken in one run so the ratios share the machine's load.
Goal (issue 2): ``speedup_auto`` ≥ 10 at (32, 30, 20, 512) on 2 cores, ≥ 1 elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from dcat import cross_attention_loss

CASES = [(32, 30, 20, 512), (16, 8, 12, 512), (64, 100, 25, 512)]


def time_ms(method: str, batch: int, s_a: int, s_b: int, d: int, repeats: int) -> float:
    g = torch.Generator().manual_seed(0)
    k_a, v_a = (torch.randn(batch, s_a, d, generator=g) for _ in range(2))
    k_b, v_b = (torch.randn(batch, s_b, d, generator=g, requires_grad=True) for _ in range(2))
    mask = torch.rand(batch, generator=g) < 0.8
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        loss = cross_attention_loss((k_a, None, v_a), (k_b, None, v_b), mask, method=method)
        loss.backward()
        if i >= 2:  # the first two runs warm up allocators and kernels
            times.append((time.perf_counter() - start) * 1e3)
        k_b.grad = v_b.grad = None
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    cases = []
    for batch, s_a, s_b, d in CASES:
        row = {"B": batch, "S_a": s_a, "S_b": s_b, "d": d}
        for method in ("materialize", "gram", "auto"):
            row[f"{method}_ms"] = round(time_ms(method, batch, s_a, s_b, d, args.repeats), 3)
        row["speedup_auto"] = round(row["materialize_ms"] / row["auto_ms"], 2)
        cases.append(row)
        print(f"B={batch} S_a={s_a} S_b={s_b} d={d}: {row}", flush=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(json.dumps({"cores": cores, "torch_threads": torch.get_num_threads(), "cases": cases}))


if __name__ == "__main__":
    main()
