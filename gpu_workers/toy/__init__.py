"""Framecast Toy: a tiny text-to-video model trained on a synthetic world of flat shapes.

- world.py  – the scenes and their captions (numpy only)
- judge.py  – reads a decoded video back into background, colour, shape and direction
- model.py  – the diffusers components (WanPipeline parts) at toy sizes
- train.py  – the reproducible training run (`manage.py train_toy_model`)
"""

import os

# Without this, OpenMP threads spin while they wait for each other, and on a CPU shared with
# other processes a training step becomes 10-20x slower (measured: 0.5 s -> 8 s per
# transformer step at 2 threads, load 7 on 2 cores). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
