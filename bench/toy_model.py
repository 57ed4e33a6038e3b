"""Retraining check for the shipped toy model (framecast-toy): trains it again from scratch
with the same command and seeds, judges both the shipped and the retrained pipeline on the
same prompts and seeds, and prints both score sets and their differences. Retraining counts
as reproducing the model when every difference is within 5 points; the exit status is 1
when one is not.

Too slow for the test suite (the training alone takes ~50 minutes on 2 CPU cores), hence a
benchmark:

    .venv/bin/python bench/toy_model.py                 # retrain into a temporary folder
    .venv/bin/python bench/toy_model.py --retrained DIR # judge an already retrained folder

It judges the pipelines directly (gpu_workers.toy.evaluate), not through the platform;
tests/test_toy_model.py covers the platform path.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see gpu_workers/toy/__init__.py

SHIPPED = REPO / "gpu_workers" / "weights" / "framecast-toy"
TOLERANCE = 5.0  # points of agreement, per attribute and prompt set


def scores_for(path: Path) -> dict[str, dict[str, float]]:
    from gpu_workers.pipeline import clear_pipeline_cache, load_pipeline
    from gpu_workers.toy.evaluate import held_out_sample, score_model, seen_sample

    pipe = load_pipeline(path, device="cpu")
    result = {
        "seen": score_model(pipe, seen_sample(24), [1, 2]).percent(),
        "held-out": score_model(pipe, held_out_sample(12), [1, 2]).percent(),
    }
    clear_pipeline_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="Retrain framecast-toy from scratch and compare judge scores.")
    parser.add_argument("--retrained", type=Path, help="an already retrained pipeline folder (skip training)")
    parser.add_argument("--shipped", type=Path, default=SHIPPED)
    args = parser.parse_args()

    import torch

    from gpu_workers.toy.train import TrainConfig, train

    torch.set_num_threads(TrainConfig().threads)
    retrained = args.retrained
    if retrained is None:
        retrained = Path(tempfile.mkdtemp(prefix="framecast-toy-retrained-")) / "framecast-toy"
        started = time.monotonic()
        train(retrained, TrainConfig())
        print(f"retrained in {(time.monotonic() - started) / 60:.1f} min -> {retrained}")

    shipped, again = scores_for(args.shipped), scores_for(retrained)
    worst = 0.0
    print(f"{'set':<10}{'attribute':<12}{'shipped':>9}{'retrained':>11}{'delta':>8}")
    for group in ("seen", "held-out"):
        for key, value in shipped[group].items():
            delta = again[group][key] - value
            worst = max(worst, abs(delta))
            print(f"{group:<10}{key:<12}{value:>8.1f}%{again[group][key]:>10.1f}%{delta:>+8.1f}")
    ok = worst <= TOLERANCE
    print(f"largest difference {worst:.1f} points: {'within' if ok else 'OUTSIDE'} the {TOLERANCE:.0f}-point tolerance")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
