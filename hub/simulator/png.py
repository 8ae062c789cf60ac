"""Placeholder PNGs made with zlib and struct only, so the simulator needs no imaging library.

A grid is four coloured quadrants (like a Midjourney 2x2 grid), a single image one colour;
colours come from a hash of the job and image, so every result URL has its own picture.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from functools import lru_cache

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _colour(seed: str) -> tuple[int, int, int]:
    digest = hashlib.blake2b(seed.encode(), digest_size=3).digest()
    # Keep colours away from black so the vertical shading stays visible.
    return (64 + digest[0] % 192, 64 + digest[1] % 192, 64 + digest[2] % 192)


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGB PNG from ``height`` rows of ``3 * width`` bytes each."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (None) on every row
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )


@lru_cache(maxsize=256)
def placeholder_png(seed: str, *, grid: bool = False, size: int = 128, shade: float = 1.0) -> bytes:
    """A ``size`` x ``size`` placeholder; ``grid`` draws four quadrants, ``shade`` dims it."""
    half = size // 2
    colours = [_colour(f"{seed}:{i}") for i in range(4)] if grid else [_colour(seed)] * 4
    rows = []
    for y in range(size):
        light = shade * (0.75 + 0.25 * (1 - y / size))  # a soft vertical gradient
        top = y < half
        left, right = (colours[0], colours[1]) if top else (colours[2], colours[3])
        row = bytes(min(255, int(c * light)) for c in left) * half
        row += bytes(min(255, int(c * light)) for c in right) * (size - half)
        rows.append(row)
    return encode_png(size, size, rows)
