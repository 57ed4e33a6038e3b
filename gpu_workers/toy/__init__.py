"""Framecast Toy: a tiny text-to-video model trained on a synthetic world of flat shapes.

- world.py  – the scenes and their captions (numpy only)
- judge.py  – reads a decoded video back into background, colour, shape and direction
- model.py  – the diffusers components (WanPipeline parts) at toy sizes
- train.py  – the reproducible training run (`manage.py train_toy_model`)
"""

# OMP_WAIT_POLICY=PASSIVE is set by the gpu_workers package itself (gpu_workers/__init__.py).
