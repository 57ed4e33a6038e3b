"""The safetensors header check: real files pass with their tensors listed; every hostile
or damaged one is refused with the reason, having read no more than its header."""

import io
import json

import numpy as np
import pytest
from safetensors.numpy import save

from generation.lora_targets import LoraMismatch, lora_shape, wan_targets
from generation.safetensors_check import MAX_HEADER_BYTES, SafetensorsError, read_header

from .loras import lora_bytes, raw_file

CONFIG = {"num_layers": 2, "num_attention_heads": 2, "attention_head_dim": 12, "ffn_dim": 48, "freq_dim": 32,
          "text_dim": 32, "out_channels": 16, "patch_size": [1, 2, 2]}


def header_of(data: bytes):
    return read_header(io.BytesIO(data), size=len(data))


def refusal(data: bytes) -> str:
    with pytest.raises(SafetensorsError) as caught:
        header_of(data)
    return str(caught.value)


def test_a_file_written_by_safetensors_is_read_with_its_tensors_and_metadata():
    data = save({"a": np.zeros((2, 3), np.float16), "b": np.ones(4, np.float32)}, metadata={"format": "pt"})
    header = header_of(data)
    assert header.metadata == {"format": "pt"}
    assert {name: (t.dtype, t.shape) for name, t in header.tensors.items()} == {"a": ("F16", (2, 3)), "b": ("F32", (4,))}
    assert header.data_bytes == 2 * 3 * 2 + 4 * 4


class CountingReader(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


def test_only_the_header_is_read_not_the_tensors():
    data = save({"big": np.zeros((1024, 1024), np.float16)})
    reader = CountingReader(data)
    header = read_header(reader, size=len(data))
    assert reader.read_bytes == 8 + header.header_bytes < 1000 < len(data)


TENSOR = {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "The file is empty."),
        (b"\x01\x00\x00", "too short for a safetensors header"),
        (raw_file({"a": TENSOR}, b"\0" * 4, length=2 * 2**30), "claims 2147483648 bytes; at most"),
        (raw_file({"a": TENSOR}, b"\0" * 4, length=10_000), "the file has only"),
        (raw_file(b'{"a": 1', b""), "not valid JSON"),
        (raw_file(b"[1, 2]", b""), "not a JSON object"),
        (raw_file(b'{"__metadata__": {"k": "\xff\xfe"}}'), "not UTF-8"),
        (raw_file(b'{"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}, "a": {"dtype": "F16", "shape": [2], '
                  b'"data_offsets": [0, 4]}}', b"\0" * 4), "names 'a' twice"),
        (raw_file({"__metadata__": {"k": 1}}), "__metadata__ must map strings to strings"),
        (raw_file({"a": {**TENSOR, "dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), "is I64"),
        (raw_file({"a": {**TENSOR, "dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8), "is F64"),
        (raw_file({"a": {**TENSOR, "dtype": "Q4"}}, b"\0" * 4), "not a safetensors dtype"),
        (raw_file({"a": {**TENSOR, "shape": [-2]}}, b"\0" * 4), "shape must be a list of whole numbers"),
        (raw_file({"a": {**TENSOR, "shape": [3]}}, b"\0" * 4), "takes 6 bytes, but its offsets span 4"),
        (raw_file({"a": TENSOR, "b": {**TENSOR, "data_offsets": [2, 6]}}, b"\0" * 6), "overlaps the tensor before it"),
        (raw_file({"a": TENSOR, "b": TENSOR}, b"\0" * 4), "overlaps the tensor before it"),
        (raw_file({"a": {**TENSOR, "data_offsets": [2, 6]}}, b"\0" * 6), "leaves a gap before it"),
        (raw_file({"a": TENSOR}, b"\0" * 3), "need 4 bytes of data; the file has 3"),
        (raw_file({"a": TENSOR}, b"\0" * 9), "5 bytes after its last tensor"),
        (raw_file({"a": {**TENSOR, "extra": 1}}, b"\0" * 4), "exactly dtype, shape and data_offsets"),
        (raw_file({"a": {**TENSOR, "data_offsets": [4, 0]}}, b"\0" * 4), "ends (0) before it begins (4)"),
        (raw_file(b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"), "not a safetensors header"),
    ],
    ids=["empty", "short", "claims-2GB", "longer-than-file", "truncated-json", "not-object", "non-utf8-metadata",
         "duplicate-key", "metadata-not-strings", "I64", "F64", "unknown-dtype", "negative-shape", "size-mismatch",
         "overlap", "same-bytes-twice", "gap", "truncated-data", "trailing-bytes", "extra-field", "backwards",
         "deep-nesting"],
)
def test_hostile_or_damaged_files_are_refused_with_the_reason(data, reason):
    assert reason in refusal(data)


def test_the_header_limit_is_a_few_megabytes():
    assert MAX_HEADER_BYTES == 8 * 2**20


def test_padding_spaces_after_the_header_are_allowed_as_the_format_says():
    header = json.dumps({"a": TENSOR}).encode() + b"    "
    assert set(header_of(raw_file(header, b"\0" * 4)).tensors) == {"a"}


@pytest.mark.parametrize("layout", ["diffusers", "original"])
def test_a_lora_of_the_model_fits_its_layers_in_either_layout(layout):
    data = lora_bytes(CONFIG, rank=4, layout=layout, with_alpha=True)
    shape = lora_shape(header_of(data), wan_targets(CONFIG), model="tiny")
    assert (shape.rank, shape.modules) == (4, 2 * 6)


def test_a_lora_of_a_wider_model_is_for_another_model():
    wider = {**CONFIG, "attention_head_dim": 16}
    with pytest.raises(LoraMismatch, match="24 → 24 in tiny, but this LoRA's is 32 → 32: it is for another model"):
        lora_shape(header_of(lora_bytes(wider)), wan_targets(CONFIG), model="tiny")


def test_a_lora_of_a_deeper_model_names_the_block_this_one_lacks():
    deeper = {**CONFIG, "num_layers": 3}
    with pytest.raises(LoraMismatch, match=r"adapts blocks\.2\.attn1\.to_\w+, which tiny does not have"):
        lora_shape(header_of(lora_bytes(deeper)), wan_targets(CONFIG), model="tiny")


def test_tensors_that_are_not_lora_weights_are_refused():
    data = save({"model.diffusion_model.input_blocks.0.weight": np.zeros((2, 2), np.float16)})
    with pytest.raises(LoraMismatch, match="is not a LoRA weight of a Wan transformer"):
        lora_shape(header_of(data), wan_targets(CONFIG), model="tiny")


def test_a_layer_with_only_its_down_half_is_refused():
    data = save({"transformer.blocks.0.attn1.to_q.lora_A.weight": np.zeros((4, 24), np.float16)})
    with pytest.raises(LoraMismatch, match="has no lora_B"):
        lora_shape(header_of(data), wan_targets(CONFIG), model="tiny")


def test_norm_deltas_of_the_original_layout_are_ignored_as_diffusers_ignores_them():
    data = save({
        "diffusion_model.blocks.0.self_attn.q.lora_down.weight": np.zeros((4, 24), np.float16),
        "diffusion_model.blocks.0.self_attn.q.lora_up.weight": np.zeros((24, 4), np.float16),
        "diffusion_model.blocks.0.cross_attn.norm_k.diff": np.zeros(24, np.float16),
        "diffusion_model.blocks.0.norm3.diff_b": np.zeros(24, np.float16),
    })
    assert lora_shape(header_of(data), wan_targets(CONFIG), model="tiny").modules == 1
    other = save({"diffusion_model.blocks.0.self_attn.q.diff": np.zeros((24, 24), np.float16)})
    with pytest.raises(LoraMismatch, match="is not a LoRA weight"):
        lora_shape(header_of(other), wan_targets(CONFIG), model="tiny")
