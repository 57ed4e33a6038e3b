"""bench/gpu: what one GPU worker does per job at each speed, and what overlapping encode
with the next job's denoising saves. Runs on CUDA when present, else the CPU.

For N back-to-back jobs of one model at one speed it measures, in one run:
  - denoise seconds per job (the GPU's work), encode seconds per job (CPU: H.264 + poster +
    sprite sheet), peak GPU memory;
  - wall time of the N jobs run one after the other (denoise, then encode), and with the
    encode of each job on a background thread while the next one denoises (what
    gpu_workers.runner.Finisher does in the worker), and the share of wall time the
    denoiser sat idle in each mode;
  - the cost per video and per video-second at the pool's GPU-hour price.

Speeds run as the worker runs them (gpu_workers.pipeline.generate_frames, prompt
embeddings cached as on a worker serving a repeated prompt):
  standard  --steps steps at --guidance
  fast      the same with First-Block Cache (gpu_workers.runner.FAST_MODE_CACHE_THRESHOLD)
  turbo     the registry's turbo adapter for --turbo-of (steps, guidance, flow shift: Wan 2.1
            1.3B: 4 steps, no guidance, shift 5): --lora-path, or a random LoRA of
            --lora-rank on the attention and feed-forward layers standing in for it (the
            same shapes, so the same cost; the pictures are noise)

--arch wan2.1-1.3b builds Wan 2.1 T2V 1.3B from its published configuration with random
weights (nothing is downloaded): the real transformer (30 layers, width 1536, 12 heads,
feed-forward 8960, text width 4096), the real VAE, and UniPC with flow shift 3 (480p).
The text encoder is a stand-in: a random UMT5 of the real width (4096) with --text-layers
layers (UMT5-XXL has 24, about 11 GB). Per-video times exclude text encoding (the
embedding is cached after the warm-up, as on a worker); the stand-in's uncached encode is
printed for information only.

    .venv/bin/python bench/gpu.py                                   # the tiny model
    .venv/bin/python bench/gpu.py --arch wan2.1-1.3b --width 832 --height 480 --frames 81 \
        --steps 50 --fps 16 --jobs 2 --speed turbo --compile --price 2.69
    .venv/bin/python bench/gpu.py --model-path /models/Wan2.1-T2V-1.3B-Diffusers \
        --width 832 --height 480 --frames 81 --steps 50 --fps 16 --jobs 4 --price 2.69

--finish-only measures the CPU side alone (no torch, no model): the finishing stages the
worker runs after denoising (gpu_workers.runner._finish: the invisible watermark, H.264
encode, C2PA signing where a certificate is configured, poster, sprite sheet) on
synthetic 832×480 and 1280×720 clips of 81 frames, with 1..--max-threads clips finished
concurrently, and the finisher threads a worker needs so that the GPU never waits on them
(FRAMECAST_FINISHER_THREADS):

    .venv/bin/python bench/gpu.py --finish-only [--denoise-seconds 4.0] [--clips 2]
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Wan 2.1 T2V 1.3B as published (Wan-AI/Wan2.1-T2V-1.3B-Diffusers, transformer/config.json).
WAN21_13B_TRANSFORMER = dict(
    patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=1024,
)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build_wan21_13b(device: str, *, text_layers: int):
    """Wan 2.1 T2V 1.3B's architecture with random weights, on `device` (bf16 transformer
    and text encoder on CUDA, float32 VAE; float32 on the CPU)."""
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

    from gpu_workers.tiny_model import ensure_tiny_model

    cuda = device.startswith("cuda")
    main = torch.bfloat16 if cuda else torch.float32
    tiny = Path(tempfile.mkdtemp()) / "framecast-tiny"
    ensure_tiny_model(tiny)  # for its tokenizer (the stand-in encoder's vocabulary)
    tokenizer = AutoTokenizer.from_pretrained(tiny / "tokenizer")
    torch.manual_seed(0)
    with torch.device(device):  # initialised where it runs: seconds, not minutes, for 1.3B
        transformer = WanTransformer3DModel(**WAN21_13B_TRANSFORMER).eval()
        vae = AutoencoderKLWan().eval()  # float32; its defaults are Wan 2.1's VAE
        text_encoder = UMT5EncoderModel(UMT5Config(
            vocab_size=len(tokenizer), d_model=4096, d_kv=64, d_ff=10240, num_layers=text_layers, num_heads=64,
            feed_forward_proj="gated-gelu", dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
        )).eval()
    if main != torch.float32:
        text_encoder.to(main)
        # As from_pretrained loads it: bf16, except the modules the class keeps in float32.
        keep = transformer._keep_in_fp32_modules or []
        for name, param in transformer.named_parameters():
            if not any(part in name.split(".") for part in keep):
                param.data = param.data.to(main)
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
    )
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def speed_settings(args, pipe):
    """(steps, guidance, keyword arguments of generate_frames) for --speed."""
    if args.speed == "standard":
        return args.steps, args.guidance, {}
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    if args.speed == "fast":
        from gpu_workers.runner import FAST_MODE_CACHE_THRESHOLD

        return args.steps, args.guidance, {"step_cache_threshold": FAST_MODE_CACHE_THRESHOLD}
    from generation import catalog
    from gpu_workers import adapters

    turbo = catalog.all_models()[args.turbo_of].turbo
    if args.lora_path:
        path, label = Path(args.lora_path), args.lora_path
    else:
        path = adapters.save_random_lora(
            pipe.transformer, Path(tempfile.mkdtemp()) / "turbo.safetensors", rank=args.lora_rank, seed=0
        )
        label = f"random LoRA of rank {args.lora_rank}"
    adapter = adapters.Adapter(name="turbo", path=path, scale=turbo.scale)
    print(f"turbo ({args.turbo_of}): {turbo.steps} steps, guidance {turbo.guidance}, flow shift {turbo.flow_shift}; {label}")
    return turbo.steps, turbo.guidance, {"adapters": [adapter], "flow_shift": turbo.flow_shift}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model-path", help="a local diffusers pipeline folder (default: the tiny model, built here)")
    source.add_argument("--arch", choices=["wan2.1-1.3b"], help="a published architecture with random weights")
    parser.add_argument("--speed", choices=["standard", "fast", "turbo"], default="standard")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--steps", type=int, default=20, help="standard and fast (turbo takes the adapter's)")
    parser.add_argument("--guidance", type=float, default=5.0, help="standard and fast")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--compile", action="store_true", help="torch.compile the transformer (after loading adapters)")
    parser.add_argument("--turbo-of", default="wan2.1-t2v-1.3b", help="the registry model whose turbo settings to use")
    parser.add_argument("--lora-path", help="turbo: a distillation LoRA file (diffusers format)")
    parser.add_argument("--lora-rank", type=int, default=64, help="turbo: the rank of the random stand-in LoRA")
    parser.add_argument("--text-layers", type=int, default=2, help="--arch: layers of the stand-in text encoder")
    parser.add_argument("--denoise-only", action="store_true", help="skip encoding and the overlap comparison")
    parser.add_argument("--price", type=float, default=2.69, help="the pool's price per GPU-hour, USD")
    parser.add_argument("--finish-only", action="store_true", help="time the CPU finishing stages alone (no model)")
    parser.add_argument("--denoise-seconds", type=float, default=TURBO_480P_DENOISE_SECONDS,
                        help="--finish-only: turbo denoise seconds of one 832x480x81 clip on the GPU")
    parser.add_argument("--max-threads", type=int, default=4, help="--finish-only: up to this many clips at once")
    parser.add_argument("--clips", type=int, default=2, help="--finish-only: clips per thread at each thread count")
    args = parser.parse_args()
    if args.finish_only:
        finish_only(args)
        return

    import torch

    from gpu_workers import embeddings, encode, pipeline
    from gpu_workers.tiny_model import ensure_tiny_model

    device = pipeline.default_device()
    cuda = device.startswith("cuda")
    started = time.perf_counter()
    if args.arch:
        pipe, model = build_wan21_13b(device, text_layers=args.text_layers), f"{args.arch} (random weights)"
    else:
        path = Path(args.model_path) if args.model_path else Path(tempfile.mkdtemp()) / "framecast-tiny"
        if not args.model_path:
            ensure_tiny_model(path)
        pipe, model = pipeline.load_pipeline(path, device=device), path.name
    load_seconds = time.perf_counter() - started
    name = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    steps, guidance, extra = speed_settings(args, pipe)
    prompt = "a red kite over a green hill"

    t = time.perf_counter()
    embeddings.embedding(pipe, prompt, max_sequence_length=pipeline.DEFAULT_MAX_SEQUENCE_LENGTH)
    text_seconds = time.perf_counter() - t

    def denoise(seed: int):
        return pipeline.generate_frames(
            pipe, prompt=prompt, negative_prompt="", seed=seed, width=args.width,
            height=args.height, num_frames=args.frames, steps=steps, guidance=guidance, **extra,
        )

    def finish(frames) -> None:
        encode.encode_mp4(frames, fps=args.fps)
        encode.poster_jpeg(frames)
        encode.spritesheet_jpeg(frames)

    if extra.get("adapters"):
        denoise(0)  # loads the adapter: the compiled graph must see the LoRA layers
    if args.compile:
        pipe.transformer.compile()
    t = time.perf_counter()
    denoise(0)  # warm-up: kernels, allocator, caches, compilation
    warmup_seconds = time.perf_counter() - t
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    denoise_times, encode_times = [], []
    wall = time.perf_counter()
    for seed in range(args.jobs):
        t = time.perf_counter()
        frames = denoise(seed)
        denoise_times.append(time.perf_counter() - t)
        if not args.denoise_only:
            t = time.perf_counter()
            finish(frames)
            encode_times.append(time.perf_counter() - t)
    sequential = time.perf_counter() - wall

    seconds_of_video = args.frames / args.fps
    print(f"device: {name}; model: {model}; speed {args.speed}{', compiled' if args.compile else ''}; "
          f"{args.width}x{args.height}, {args.frames} frames, {steps} steps, guidance {guidance}")
    print(f"load: {load_seconds:.2f} s; warm-up{' (compiling)' if args.compile else ''}: {warmup_seconds:.2f} s; "
          f"text encoding of one prompt, uncached: {text_seconds:.3f} s{' (stand-in encoder)' if args.arch else ''}")
    print(f"denoise per job: median {statistics.median(denoise_times):.3f} s, p95 {percentile(denoise_times, 0.95):.3f} s")
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    if peak is not None:
        print(f"peak GPU memory: {peak:.2f} GiB")
    per_job = statistics.median(denoise_times)
    if not args.denoise_only:
        print(f"encode per job (H.264 + poster + sprite sheet): median {statistics.median(encode_times):.3f} s, "
              f"p95 {percentile(encode_times, 0.95):.3f} s")
        overlapped, busy = overlap(denoise, finish, args.jobs)
        for label, total, denoising in (("one after the other", sequential, sum(denoise_times)),
                                        ("encode overlapped", overlapped, busy)):
            print(f"{args.jobs} jobs, {label}: {total:.2f} s wall, denoiser idle {100 * (1 - denoising / total):.1f}%")
        print(f"throughput ratio overlapped/sequential: {sequential / overlapped:.2f}x")
        per_job = overlapped / args.jobs
    dollars = per_job * args.price / 3600
    print(f"cost at ${args.price}/GPU-hour: ${dollars:.5f} per video, ${dollars / seconds_of_video:.5f} per video-second")
    print(f"| {args.speed} | {'yes' if args.compile else 'no'} | {steps} | {per_job:.2f} s | "
          f"{'-' if peak is None else f'{peak:.1f} GiB'} | ${dollars / seconds_of_video:.5f} |")


# Turbo denoising of one 832x480, 81-frame clip of Wan 2.1 T2V 1.3B on one H100, estimated
# (no GPU measured it here): published 50 standard steps with guidance take 97-103 s, and 4
# steps without guidance are 1/25 of that transformer work, about 4 s; the VAE decode comes
# on top, so the real figure is higher and this errs towards more finisher threads.
TURBO_480P_DENOISE_SECONDS = 4.0
FINISH_STAGES = ("watermark", "encode", "c2pa", "poster", "spritesheet")


def synthetic_clip(width: int, height: int, frames: int, seed: int):
    """A moving gradient with noise: as hard for x264 as a generated clip, roughly."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    clip = np.empty((frames, height, width, 3), dtype=np.uint8)
    for i in range(frames):
        base = np.stack([(x + 4 * i) % 256, (y + 2 * i) % 256, (x + y + 3 * i) % 256], axis=-1)
        clip[i] = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return clip


def finish_stages(frames, *, fps: int, mark_id: int) -> dict[str, float]:
    """Seconds per stage of gpu_workers.runner._finish for one clip (its real functions,
    without the database: the mark is drawn here rather than recorded)."""
    from datetime import UTC, datetime

    from gpu_workers import encode
    from safety import credentials, watermark

    seconds = {}

    def timed(name, fn):
        t = time.perf_counter()
        result = fn()
        seconds[name] = time.perf_counter() - t
        return result

    marked = timed("watermark", lambda: watermark.embed(encode.upscale_for_display(frames), mark_id))
    video = timed("encode", lambda: encode.encode_mp4(marked, fps=fps))
    timed("c2pa", lambda: credentials.sign_mp4(video, model_name="bench", created_at=datetime.now(UTC)))
    timed("poster", lambda: encode.poster_jpeg(marked))
    timed("spritesheet", lambda: encode.spritesheet_jpeg(marked))
    seconds["total"] = sum(seconds.values())
    return seconds


def finish_only(args) -> None:
    import math
    import resource
    from concurrent.futures import ThreadPoolExecutor

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from safety import credentials

    cores = os.cpu_count()
    print(f"finishing stages on the CPU ({cores} cores; x264 picks its own thread count, 1.5 per core, "
          f"so one clip's encode already uses several); C2PA signing "
          f"{'configured' if credentials.signing_configured() else 'not configured (0 s)'}")
    denoise_480 = args.denoise_seconds
    resolutions = [(832, 480, denoise_480), (1280, 720, denoise_480 * (1280 * 720) / (832 * 480))]
    for width, height, denoise in resolutions:
        clips = {seed: synthetic_clip(width, height, 81, seed) for seed in range(args.max_threads * args.clips)}
        finish_stages(clips[0], fps=16, mark_id=1)  # warm-up: imports, x264 start-up
        print(f"\n{width}x{height}, 81 frames at 16 fps; turbo denoise assumed {denoise:.1f} s per clip")
        print("| clips at once | " + " | ".join(f"{s} median/p95 s" for s in FINISH_STAGES)
              + " | total median/p95 s | CPU-seconds per clip | clips/minute | finisher threads needed |")
        print("|---" * (len(FINISH_STAGES) + 5) + "|")
        for threads in range(1, args.max_threads + 1):
            seeds = list(range(threads * args.clips))
            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            wall = time.perf_counter()
            with ThreadPoolExecutor(max_workers=threads) as pool:
                runs = list(pool.map(lambda s, clips=clips: finish_stages(clips[s], fps=16, mark_id=s + 1), seeds))
            wall = time.perf_counter() - wall
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime) / len(seeds)
            per_minute = 60 * len(seeds) / wall
            cells = [f"{statistics.median(v):.2f}/{percentile(v, 0.95):.2f}"
                     for v in ([r[s] for r in runs] for s in (*FINISH_STAGES, "total"))]
            # The GPU hands over a clip every `denoise` seconds; each finisher thread takes
            # `total` seconds per clip at this concurrency, so it needs total/denoise threads
            # (enough only if the throughput at that many threads keeps up: clips/minute
            # must reach 60/denoise).
            needed = math.ceil(statistics.median([r["total"] for r in runs]) / denoise)
            print(f"| {threads} | " + " | ".join(cells) + f" | {cpu:.2f} | {per_minute:.1f} | {needed} |")
            if threads == 1:
                alone, cpu_alone = statistics.median([r["total"] for r in runs]), cpu
        print(f"the GPU hands over {60 / denoise:.1f} clips/minute at this size. On a host with cores to spare, "
              f"finishing keeps up with ceil({alone:.2f} / {denoise:.1f}) = {math.ceil(alone / denoise)} finisher "
              f"threads, which keep about {cpu_alone / denoise:.1f} cores busy ({cpu_alone:.2f} CPU-seconds per "
              f"clip); on this host it keeps up only if some row's clips/minute reaches {60 / denoise:.1f}")


def overlap(denoise, finish, jobs: int) -> tuple[float, float]:
    """Wall time of `jobs` jobs with each encode on a thread while the next one denoises,
    and the time spent denoising."""
    busy = 0.0
    pending: threading.Thread | None = None
    wall = time.perf_counter()
    for seed in range(jobs):
        t = time.perf_counter()
        frames = denoise(seed)
        busy += time.perf_counter() - t
        if pending is not None:
            pending.join()  # at most one clip waits for the encoder, as in the worker
        pending = threading.Thread(target=finish, args=(frames,))
        pending.start()
    pending.join()
    return time.perf_counter() - wall, busy


if __name__ == "__main__":
    main()
