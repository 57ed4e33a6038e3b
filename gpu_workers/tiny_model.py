"""A tiny, randomly initialised but deterministic Wan 2.1 text-to-video pipeline.

It uses the real diffusers/transformers classes (so the worker code path is the
same as for the real Wan 2.1 T2V 1.3B checkpoint) with configs small enough to
generate a 9-frame 64x64 clip in a fraction of a second on a CPU. Its output is
noise-like coloured video: it exists for tests and local development only.

Usage: python -m gpu_workers.tiny_model PATH
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLWan,
    FlowMatchEulerDiscreteScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

# Same ids as the T5/UMT5 family (pad=0, eos=1, unk=2) so the UMT5 config's
# defaults (pad_token_id=0, eos_token_id=1) stay correct.
SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]

# A small fixed vocabulary: enough that typical prompts map to distinct ids
# instead of all collapsing to <unk>. Order matters (it defines the ids), so
# only ever append to this list, or the saved model changes.
VOCAB_WORDS = """
a an the and or of in on at to with from by for over under into through near
is are was be being it its this that these those there here very more most
red orange yellow green blue purple pink brown black white gray grey gold silver
dark light bright colorful colourful pale
cat dog bird fish horse cow sheep lion tiger bear fox wolf rabbit mouse duck
man woman boy girl child person people crowd robot car bus train boat ship plane
tree trees flower flowers grass forest mountain mountains river lake sea ocean
beach sky cloud clouds sun moon star stars rain snow fire water wind storm
city street road house building bridge tower castle room window door garden
ball square circle triangle cube box shape shapes line lines dot
big small large tiny tall short long old new young happy sad fast slow
running walking flying swimming jumping dancing spinning falling rolling moving
runs walks flies swims jumps dances spins falls rolls moves moving
left right up down across around toward away top bottom middle center
day night morning evening sunset sunrise winter summer spring autumn
cinematic realistic cartoon animated painting drawing photo video shot scene
closeup close wide view camera slowly quickly zoom pan background foreground
blurry blur low quality worst bad ugly distorted watermark text static noise
""".split()

# Tiny sizes chosen for speed; see FACTS.md. The VAE keeps the real Wan
# compression (8x spatial from 3 downsamples, 4x temporal) so the pipeline's
# constraints (H, W multiple of 16; frames = 4k+1) match the real model.
TEXT_DIM = 32
MAX_TOKENS = 512  # real Wan pads prompts to 512 tokens; the tokenizer must allow that
ROPE_MAX_SEQ_LEN = 64  # rotary table length per axis: covers 1024 px / 16 and 253 frames


def _make_tokenizer() -> PreTrainedTokenizerFast:
    vocab: dict[str, int] = {}
    for word in SPECIAL_TOKENS + VOCAB_WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # T5 tokenizers append </s>; WanPipeline relies on add_special_tokens=True doing that.
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_TOKENS,
        padding_side="right",
    )


def make_text_encoder(
    vocab_size: int, *, d_model: int = TEXT_DIM, d_kv: int = 8, d_ff: int = 64, seed: int = 1
) -> UMT5EncoderModel:
    """A randomly initialised 2-layer UMT5 encoder (deterministic for `seed`), in eval mode;
    the toy model (gpu_workers/toy/model.py) uses a wider one, frozen."""
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_kv,
        d_ff=d_ff,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    return UMT5EncoderModel(config).eval()


def _make_transformer() -> WanTransformer3DModel:
    torch.manual_seed(2)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,  # must be divisible so the t/h/w rotary split is even
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=32,
        ffn_dim=48,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=ROPE_MAX_SEQ_LEN,
    ).eval()


def _make_vae() -> AutoencoderKLWan:
    torch.manual_seed(3)
    return AutoencoderKLWan(
        base_dim=4,
        z_dim=16,  # must equal the transformer's in_channels and the 16 latents_mean/std entries
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()


def make_tiny_pipeline() -> WanPipeline:
    """Builds the tiny pipeline in memory (deterministic weights)."""
    tokenizer = _make_tokenizer()
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=make_text_encoder(len(tokenizer)),
        vae=_make_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),  # Wan's recommended shift at 480p
        transformer=_make_transformer(),
    )


def _move_into_place(built: Path, path: Path) -> None:
    """Renames the finished directory onto `path`, replacing any previous copy."""
    old: Path | None = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex}")
        os.rename(path, old)
    try:
        os.rename(built, path)
    except OSError:
        # Another process won a race and put a complete model there; ours is
        # byte-identical (deterministic), so keep theirs.
        if not (path / "model_index.json").exists():
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _make_readable(root: Path) -> None:
    """mkdtemp (and the safetensors writer) create owner-only modes; give the
    tree normal umask-based modes so workers running as another user can read it."""
    umask = os.umask(0)
    os.umask(umask)
    root.chmod(0o777 & ~umask)
    for p in root.rglob("*"):
        p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def build_tiny_model(path: Path) -> None:
    """Builds the tiny pipeline and saves it to `path` atomically.

    The model is written into a temporary directory beside `path` and renamed
    into place, so an interrupted build never leaves a half model that loads.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same parent directory => same filesystem => os.rename is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.building-", dir=path.parent))
    try:
        pipe = make_tiny_pipeline()
        pipe.save_pretrained(tmp, safe_serialization=True)
        _make_readable(tmp)
        _move_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only still there if something failed


def ensure_tiny_model(path: Path) -> bool:
    """Builds the tiny model at `path` unless it is already there; True if it built."""
    if (Path(path) / "model_index.json").is_file():
        return False
    build_tiny_model(Path(path))
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gpu_workers.tiny_model PATH", file=sys.stderr)
        return 2
    built = ensure_tiny_model(Path(args[0]))
    print(f"{'built' if built else 'already present'}: {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
