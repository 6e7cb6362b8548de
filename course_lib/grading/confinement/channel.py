"""Messages between the grader and one sandbox: length-prefixed JSON over a pipe, tensors as raw bytes.

A frame is an 8-byte big-endian length followed by that many bytes of UTF-8 JSON. Values that JSON
cannot hold are tagged objects: ``{"__tensor__": [dtype, shape, base64 bytes]}``, ``{"__tuple__": [...]}``,
``{"__dict__": [[key, value], ...]}`` (keys ``int`` or ``str``) and ``{"__unsupported__": type name}``.

The format cannot run code when read, whatever a learner's process writes: :func:`decode` accepts
only these shapes, a dtype from :data:`DTYPES`, a byte count that matches the shape, nesting no deeper
than an observation's (:data:`MAX_DEPTH`); :class:`Reader` refuses a frame longer than its cap before reading
it. What comes out is plain data: Python scalars, ``str``, ``None``, lists, tuples, dicts,
:class:`~course_lib.grading.authoring.plain.Unsupported` and ordinary (never subclassed) CPU tensors.
"""
from __future__ import annotations

import base64
import json
import math
import os
import select
import struct
from typing import Any

import torch

from ..authoring import plain
from ..authoring.plain import Unsupported

HEADER = struct.Struct(">Q")
DTYPES = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128", "uint8", "int8", "int16",
          "int32", "int64", "bool")
# an observation is {"value": plain data}, and plain data ends in a marker one level below its deepest level
MAX_DEPTH = plain.MAX_DEPTH + 2


class ChannelError(Exception):
    """A frame that is too long, malformed, or holds something :func:`decode` does not accept."""


# --- values -----------------------------------------------------------------------------------

def encode(value: Any) -> Any:
    """``value`` (plain data: see :func:`course_lib.grading.authoring.plain.to_plain`) as JSON-compatible data."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().as_subclass(torch.Tensor).contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return {"__tensor__": [str(t.dtype).removeprefix("torch."), list(t.shape), base64.b64encode(raw).decode()]}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, Unsupported):
        return {"__unsupported__": value.type_name}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__unsupported__"}:
            return {"__unsupported__": str(value["__unsupported__"])}
        return {"__dict__": [[k if isinstance(k, (int, str)) else repr(k), encode(v)] for k, v in value.items()]}
    return {"__unsupported__": f"{type(value).__module__}.{type(value).__qualname__}"}


def decode(data: Any, depth: int = 0) -> Any:
    """The plain value ``data`` (from :func:`encode`) stands for; :class:`ChannelError` if it is anything else."""
    if depth > MAX_DEPTH:
        raise ChannelError("nested too deeply")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v, depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise ChannelError(f"unexpected {type(data).__name__}")
    (tag, body), = data.items()
    if tag == "__tensor__":
        return _tensor(body)
    if tag == "__tuple__" and isinstance(body, list):
        return tuple(decode(v, depth + 1) for v in body)
    if tag == "__dict__" and isinstance(body, list):
        out = {}
        for item in body:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (int, str))
                    and not isinstance(item[0], bool)):
                raise ChannelError("malformed dict item")
            out[item[0]] = decode(item[1], depth + 1)
        return out
    if tag == "__unsupported__" and isinstance(body, str):
        return Unsupported(body[:200])
    if tag == "__float__" and body in ("nan", "inf", "-inf"):
        return float(body)
    raise ChannelError(f"unexpected tag {tag[:40]!r}")


def _tensor(body: Any) -> Any:
    if not (isinstance(body, list) and len(body) == 3 and body[0] in DTYPES and isinstance(body[1], list)
            and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in body[1])
            and len(body[1]) <= 16 and isinstance(body[2], str)):
        raise ChannelError("malformed tensor")
    dtype, shape = getattr(torch, body[0]), body[1]
    try:
        raw = base64.b64decode(body[2], validate=True)
    except ValueError:
        raise ChannelError("malformed tensor bytes") from None
    numel = math.prod(shape)
    if numel * torch.empty((), dtype=dtype).element_size() != len(raw):
        raise ChannelError("tensor bytes do not match its shape")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape).clone()


# --- frames -----------------------------------------------------------------------------------

def send(fd: int, message: dict[str, Any]) -> None:
    """Write one frame holding ``message`` (JSON-compatible) to ``fd``, whole."""
    payload = json.dumps(message, allow_nan=False).encode()
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


def receive(fd: int) -> dict[str, Any] | None:
    """Read one frame from ``fd``, blocking; ``None`` at the end of the stream (the sandbox's side)."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    body = _read_exactly(fd, HEADER.unpack(header)[0])
    if body is None:
        return None
    return json.loads(body)


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Reader:
    """Frames from a learner's process, read without blocking and never more than ``cap`` bytes each."""

    def __init__(self, fd: int, cap: int) -> None:
        self.fd, self.cap = fd, cap
        self.buffer = bytearray()
        self.closed = False

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        """The complete frames that arrived within ``timeout`` seconds (parsed JSON objects, not decoded)."""
        if not self.closed and select.select([self.fd], [], [], timeout)[0]:
            chunk = os.read(self.fd, 1 << 20)
            if chunk:
                self.buffer += chunk
            else:
                self.closed = True
        messages = []
        while len(self.buffer) >= HEADER.size:
            length = HEADER.unpack(self.buffer[:HEADER.size])[0]
            if length > self.cap:
                raise ChannelError(f"a message of {length} bytes (the limit is {self.cap})")
            if len(self.buffer) < HEADER.size + length:
                break
            body = bytes(self.buffer[HEADER.size:HEADER.size + length])
            del self.buffer[:HEADER.size + length]
            try:
                message = json.loads(body)
            except (ValueError, RecursionError):
                raise ChannelError("a message that is not JSON") from None
            if not isinstance(message, dict):
                raise ChannelError("a message that is not an object")
            messages.append(message)
        return messages
