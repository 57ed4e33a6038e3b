"""A safetensors file's header, read and checked without torch and without reading the
tensors: what the web tier knows of an uploaded LoRA before it stores anything.

The format (huggingface/safetensors, docs "Format" and the Rust crate's
`Metadata::validate`): 8 bytes, a little-endian u64 N; N bytes of UTF-8 JSON, an object
that may be padded with trailing spaces; then the data area. Each entry of the object but
`__metadata__` (a string → string map) is a tensor `{"dtype", "shape", "data_offsets":
[begin, end]}`, offsets relative to the data area; sorted by offset, the tensors must be
contiguous from 0 and cover the data area exactly, each `end - begin` equal to its element
count times its dtype's size. So no gap, no overlap (two names sharing bytes), no
trailing bytes, and a header that claims more than the file holds is refused.

Stricter than the format, because a LoRA needs no more: only the dtypes of ALLOWED_DTYPES,
a header of at most MAX_HEADER_BYTES, no duplicate JSON keys (json keeps the last silently,
the Rust reader another), only the three known fields per tensor.
"""

import json
import math
import struct
from dataclasses import dataclass
from typing import BinaryIO

# Bytes per element of every dtype the format names (safetensors' Dtype).
DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
}
ALLOWED_DTYPES = ("F16", "BF16", "F32")
# A Wan 14B LoRA on every linear layer of its 40 blocks has ~1,200 entries, about 120 kB of
# header: 8 MiB leaves room for any real file and keeps a hostile one from costing memory.
MAX_HEADER_BYTES = 8 * 2**20
TENSOR_FIELDS = {"dtype", "shape", "data_offsets"}


class SafetensorsError(ValueError):
    """The file is not a safetensors file this platform accepts; the message says why."""


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    header_bytes: int  # N: the data area starts at 8 + N
    data_bytes: int


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise SafetensorsError(f"The header names {key!r} twice.")
        seen[key] = value
    return seen


def _read_exactly(file: BinaryIO, count: int) -> bytes:
    chunks, left = [], count
    while left:
        chunk = file.read(min(left, 2**20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(name: str, entry, allowed_dtypes) -> TensorInfo:
    if not isinstance(entry, dict):
        raise SafetensorsError(f"Tensor {name!r}: its header entry is not an object.")
    if set(entry) != TENSOR_FIELDS:
        raise SafetensorsError(f"Tensor {name!r}: its header entry must have exactly dtype, shape and data_offsets.")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_SIZES:
        raise SafetensorsError(f"Tensor {name!r}: {dtype!r} is not a safetensors dtype.")
    if dtype not in allowed_dtypes:
        raise SafetensorsError(
            f"Tensor {name!r} is {dtype}; LoRA weights must be {', '.join(allowed_dtypes[:-1])} or {allowed_dtypes[-1]}."
        )
    if not isinstance(shape, list) or not all(_whole(size) for size in shape):
        raise SafetensorsError(f"Tensor {name!r}: its shape must be a list of whole numbers.")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_whole(offset) for offset in offsets)):
        raise SafetensorsError(f"Tensor {name!r}: data_offsets must be two whole numbers [begin, end].")
    begin, end = offsets
    if end < begin:
        raise SafetensorsError(f"Tensor {name!r}: its data ends ({end}) before it begins ({begin}).")
    if end - begin != math.prod(shape) * DTYPE_SIZES[dtype]:
        raise SafetensorsError(
            f"Tensor {name!r}: shape {shape} of {dtype} takes {math.prod(shape) * DTYPE_SIZES[dtype]} bytes, "
            f"but its offsets span {end - begin}."
        )
    return TensorInfo(dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def read_header(
    file: BinaryIO, *, size: int, allowed_dtypes=ALLOWED_DTYPES, max_header_bytes: int = MAX_HEADER_BYTES
) -> Header:
    """Check the safetensors file `file` (positioned at its start, `size` bytes long) and
    return its header. Reads 8 + N bytes, never the tensors. Raises SafetensorsError."""
    if size < 8:
        raise SafetensorsError(
            "The file is empty." if size == 0 else f"The file is {size} bytes: too short for a safetensors header."
        )
    (length,) = struct.unpack("<Q", _read_exactly(file, 8))
    if length > max_header_bytes:
        raise SafetensorsError(
            f"The header claims {length} bytes; at most {max_header_bytes} are accepted (the file is probably "
            "not safetensors, or damaged)."
        )
    if 8 + length > size:
        raise SafetensorsError(f"The header claims {length} bytes, but the file has only {size - 8} after its length.")
    raw = _read_exactly(file, length)
    if len(raw) != length:
        raise SafetensorsError("The file ended inside its header.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SafetensorsError(f"The header is not UTF-8 (byte {error.start}).") from None
    if not text.startswith("{"):
        raise SafetensorsError("The header is not a JSON object.")
    try:
        parsed = json.loads(text.rstrip(" "), object_pairs_hook=_no_duplicates)
    except SafetensorsError:
        raise
    except json.JSONDecodeError as error:
        raise SafetensorsError(f"The header is not valid JSON ({error.msg} at character {error.pos}).") from None
    except (ValueError, RecursionError):  # a number of thousands of digits, nesting a thousand deep
        raise SafetensorsError("The header is not a safetensors header (values beyond what it can hold).") from None
    if not isinstance(parsed, dict):
        raise SafetensorsError("The header is not a JSON object.")
    metadata = parsed.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise SafetensorsError("The header's __metadata__ must map strings to strings.")
    tensors = {name: _tensor(name, entry, allowed_dtypes) for name, entry in parsed.items()}
    data_bytes = size - 8 - length
    position = 0
    for name, tensor in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if tensor.begin != position:
            problem = "overlaps the tensor before it" if tensor.begin < position else "leaves a gap before it"
            raise SafetensorsError(f"Tensor {name!r}: its data (from byte {tensor.begin}) {problem}.")
        position = tensor.end
    if position != data_bytes:
        if position > data_bytes:
            raise SafetensorsError(f"The tensors need {position} bytes of data; the file has {data_bytes} (truncated?).")
        raise SafetensorsError(f"The file has {data_bytes - position} bytes after its last tensor.")
    return Header(tensors=tensors, metadata=metadata, header_bytes=length, data_bytes=data_bytes)
