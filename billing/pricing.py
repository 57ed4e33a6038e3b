"""What a job costs in credits, from what it costs to run.

Denoising dominates a job's GPU time and grows with pixels × frames × steps, so the price
does too, relative to a reference job: Wan 2.1 T2V 1.3B at 832×480, 81 frames, 50 steps
(about 100 s on one H100, see ../shared/FACTS.md) costs REFERENCE_CREDITS. Each model
scales that by its own `credit_factor` (a 14B model costs more per pixel-step). The fast
mode costs less. Prices round up to whole credits, at least one.
"""

import math

REFERENCE_WORK = 832 * 480 * 81 * 50
REFERENCE_CREDITS = 100
# The fast mode (First-Block Cache at threshold 0.1) took Wan 2.1 1.3B from 222 s to 139 s
# in published measurements (../shared/FACTS.md): it costs about 0.63 of the GPU time,
# and is priced at 0.65.
SPEED_FACTORS = {"standard": 1.0, "fast": 0.65}


def price_credits(
    *, credit_factor: float, width: int, height: int, num_frames: int, steps: int, speed: str = "standard"
) -> int:
    work = width * height * num_frames * steps
    return max(1, math.ceil(REFERENCE_CREDITS * credit_factor * SPEED_FACTORS[speed] * work / REFERENCE_WORK))
