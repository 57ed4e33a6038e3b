"""bench/gpu: what one GPU worker does per job, and what overlapping encode with the next
job's denoising saves. Runs on CUDA when present, else the CPU.

For N back-to-back jobs of one model it measures, in one run:
  - denoise seconds per job (the GPU's work), encode seconds per job (CPU: H.264 + poster +
    sprite sheet), peak GPU memory;
  - wall time of the N jobs run one after the other (denoise, then encode), and with the
    encode of each job on a background thread while the next one denoises (what
    gpu_workers.runner.Finisher does in the worker), and the share of wall time the
    denoiser sat idle in each mode;
  - the cost per video and per video-second at the pool's GPU-hour price.

    .venv/bin/python bench/gpu.py                                   # the tiny model
    .venv/bin/python bench/gpu.py --model-path /models/Wan2.1-T2V-1.3B-Diffusers \
        --width 832 --height 480 --frames 81 --steps 50 --fps 16 --jobs 4 --price 2.69
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", help="a local diffusers pipeline folder (default: the tiny model, built here)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--price", type=float, default=2.69, help="the pool's price per GPU-hour, USD")
    args = parser.parse_args()

    import torch

    from gpu_workers import encode, pipeline
    from gpu_workers.tiny_model import ensure_tiny_model

    path = Path(args.model_path) if args.model_path else Path(tempfile.mkdtemp()) / "framecast-tiny"
    if not args.model_path:
        ensure_tiny_model(path)
    device = pipeline.default_device()
    started = time.perf_counter()
    pipe = pipeline.load_pipeline(path, device=device)
    load_seconds = time.perf_counter() - started
    cuda = device.startswith("cuda")
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"

    def denoise(seed: int):
        return pipeline.generate_frames(
            pipe, prompt="a red kite over a green hill", negative_prompt="", seed=seed, width=args.width,
            height=args.height, num_frames=args.frames, steps=args.steps, guidance=5.0,
        )

    def finish(frames) -> None:
        encode.encode_mp4(frames, fps=args.fps)
        encode.poster_jpeg(frames)
        encode.spritesheet_jpeg(frames)

    denoise(0)  # warm-up: kernels, allocator, caches
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    denoise_times, encode_times = [], []
    wall = time.perf_counter()
    for seed in range(args.jobs):
        t = time.perf_counter()
        frames = denoise(seed)
        denoise_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        finish(frames)
        encode_times.append(time.perf_counter() - t)
    sequential = time.perf_counter() - wall

    overlap_denoise = []
    pending: threading.Thread | None = None
    wall = time.perf_counter()
    for seed in range(args.jobs):
        t = time.perf_counter()
        frames = denoise(seed)
        overlap_denoise.append(time.perf_counter() - t)
        if pending is not None:
            pending.join()  # at most one clip waits for the encoder, as in the worker
        pending = threading.Thread(target=finish, args=(frames,))
        pending.start()
    pending.join()
    overlapped = time.perf_counter() - wall

    seconds_of_video = args.frames / args.fps
    per_job = overlapped / args.jobs
    print(f"device: {name}; model: {path.name}; {args.width}x{args.height}, {args.frames} frames, {args.steps} steps")
    print(f"load: {load_seconds:.2f} s")
    print(f"denoise per job: median {statistics.median(denoise_times):.3f} s, p95 {percentile(denoise_times, 0.95):.3f} s")
    print(f"encode per job (H.264 + poster + sprite sheet): median {statistics.median(encode_times):.3f} s, "
          f"p95 {percentile(encode_times, 0.95):.3f} s")
    if cuda:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    for label, total, busy in (("one after the other", sequential, sum(denoise_times)),
                               ("encode overlapped", overlapped, sum(overlap_denoise))):
        print(f"{args.jobs} jobs, {label}: {total:.2f} s wall, denoiser idle {100 * (1 - busy / total):.1f}%")
    print(f"throughput ratio overlapped/sequential: {sequential / overlapped:.2f}x")
    print(f"cost at ${args.price}/GPU-hour: ${per_job * args.price / 3600:.5f} per video, "
          f"${per_job * args.price / 3600 / seconds_of_video:.5f} per video-second")


if __name__ == "__main__":
    main()
