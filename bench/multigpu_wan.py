"""bench/multigpu_wan: seconds per video of the Wan 2.1 T2V 1.3B architecture (random
weights) at 832×480, 81 frames, on one GPU against several with diffusers' context
parallelism (what a pool with gpus_per_worker and [pools.context_parallel] runs).

    .venv/bin/python bench/multigpu_wan.py                                 # one GPU
    torchrun --nproc-per-node 2 bench/multigpu_wan.py                      # two, Ulysses 2
    torchrun --nproc-per-node 2 bench/multigpu_wan.py --ring               # two, ring 2
    .venv/bin/python bench/multigpu_wan.py --tiny --steps 4 --videos 2     # CPU smoke test

The transformer (30 layers, 12 heads × 128, FFN 8960) and the VAE are the real model's
architecture; the text encoder is a 2-layer UMT5 of the real width (4096), since its cost
is small beside the denoising and its weights are random anyway. Every rank builds the same
weights from the same seed, cast to bf16 as a whole (from_pretrained would keep Wan's norms
and rotary tables in float32: a small difference in speed). Prints the median and spread of seconds per video (the first
video, warm-up, excluded) on rank 0. Context parallelism needs CUDA: diffusers 0.42 cannot
run it on the CPU (see tests/test_engine_pools_multigpu.py).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def wan_1_3b(device: str):
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from gpu_workers.tiny_model import _make_tokenizer

    torch.manual_seed(0)
    with torch.device(device):
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
            text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
        )
        vae = AutoencoderKLWan()  # Wan 2.1's VAE configuration
        tokenizer = _make_tokenizer()
        text_encoder = UMT5EncoderModel(UMT5Config(
            vocab_size=len(tokenizer), d_model=4096, d_kv=64, d_ff=1024, num_layers=2, num_heads=8,
            pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
        ))
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder.to(dtype).eval(), vae=vae.float().eval(),
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), transformer=transformer.to(dtype).eval())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--videos", type=int, default=3, help="timed videos after one warm-up")
    parser.add_argument("--ring", action="store_true", help="ring attention instead of Ulysses")
    parser.add_argument("--tiny", action="store_true", help="the tiny model (a smoke test of this script)")
    args = parser.parse_args()

    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl")
    rank = dist.get_rank() if world > 1 else 0
    if args.tiny:
        from gpu_workers.tiny_model import make_tiny_pipeline

        pipe = make_tiny_pipeline().to(device)
        pipe.set_progress_bar_config(disable=True)
        args.width, args.height, args.frames = min(args.width, 128), min(args.height, 128), min(args.frames, 17)
    else:
        pipe = wan_1_3b(device)
    if world > 1:
        from diffusers import ContextParallelConfig

        degrees = {"ring_degree": world} if args.ring else {"ulysses_degree": world}
        pipe.transformer.enable_parallelism(config=ContextParallelConfig(**degrees))
    seconds = []
    for index in range(args.videos + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        pipe(prompt="a red fox running through snow", negative_prompt="blurry", height=args.height, width=args.width,
             num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=5.0, output_type="np",
             generator=torch.Generator(device=device).manual_seed(index))
        if device == "cuda":
            torch.cuda.synchronize()
        if index:
            seconds.append(time.perf_counter() - started)
    if rank == 0:
        how = "1 rank" if world == 1 else f"{world} ranks, {'ring' if args.ring else 'Ulysses'} {world}"
        gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB per GPU" if device == "cuda" else ""
        print(f"{'tiny' if args.tiny else 'Wan 2.1 1.3B (random weights)'} {args.width}×{args.height}, {args.frames} "
              f"frames, {args.steps} steps, {gpu}, {how}: median {statistics.median(seconds):.2f} s per video "
              f"(min {min(seconds):.2f}, max {max(seconds):.2f}, {len(seconds)} videos){peak}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
