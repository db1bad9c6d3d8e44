"""Frames on the wire: PNG images in base64 (JSON bodies) and .npy bodies, both ways.

Everything that arrives is checked before it is decoded in full: base64 alphabet and
length, the PNG signature and its declared size (so a small PNG cannot inflate into a
huge image), and for .npy the dtype and shape, loaded without pickles. Each failure is a
`BadInput` naming the field, e.g. "context[0][1]: not valid base64".
"""

from __future__ import annotations

import base64
import binascii
import io
import math

import numpy as np
from PIL import Image

from maskvit.serve.refusals import BadInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NPY_TYPE = "application/x-npy"
DATA_URL_PREFIX = "data:image/png;base64,"
NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                      (2, 0): np.lib.format.read_array_header_2_0}


def decode_png(text: str, resolution: int, where: str) -> np.ndarray:
    """A base64 PNG (optionally a data: URL) -> uint8 (resolution, resolution, 3)."""
    if not isinstance(text, str):
        raise BadInput(f"{where}: expected a base64 PNG string")
    if text.startswith("data:"):
        if not text.startswith(DATA_URL_PREFIX):
            raise BadInput(f"{where}: only data:image/png;base64 URLs are accepted")
        text = text[len(DATA_URL_PREFIX):]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{where}: not valid base64") from None
    if not raw.startswith(PNG_SIGNATURE):
        raise BadInput(f"{where}: not a PNG image (base64 of a .png file is expected)")
    check_png_size(png_header_size(raw), resolution, where)
    try:
        with Image.open(io.BytesIO(raw)) as image:
            check_png_size(image.size, resolution, where)
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except BadInput:
        raise
    except Image.DecompressionBombError:
        raise BadInput(f"{where}: image too large to decode; this model takes "
                       f"{resolution}×{resolution}") from None
    except Exception as err:  # noqa: BLE001 - PIL raises many kinds on a damaged file
        raise BadInput(f"{where}: damaged PNG ({type(err).__name__})") from None
    return array


def png_header_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, the first after the signature; None if
    it is not there (PIL then says what is wrong)."""
    if len(raw) < 24 or raw[12:16] != b"IHDR":
        return None
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def check_png_size(size: tuple[int, int] | None, resolution: int, where: str) -> None:
    """The declared size must be the model's, checked before any pixel is decoded: a
    small file can declare a huge image (a decompression bomb)."""
    if size is None or size == (resolution, resolution):
        return
    w, h = size
    larger = ", too large" if w * h > resolution * resolution else ""
    raise BadInput(f"{where}: image is {w}×{h}{larger}; this model takes {resolution}×{resolution}")


def encode_png(frame: np.ndarray) -> str:
    """uint8 (H, W, 3) -> base64 PNG text."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_pngs(items: list, resolution: int, where: str) -> np.ndarray:
    """A list of base64 PNGs -> uint8 (N, H, W, 3)."""
    return np.stack([decode_png(item, resolution, f"{where}[{i}]") for i, item in enumerate(items)])


def load_npy(body: bytes, where: str = "body") -> np.ndarray:
    """A .npy file's bytes -> array; pickles, object arrays and garbage are a `BadInput`.

    The header's shape is checked against the bytes that follow it before numpy sees the
    file: numpy allocates the declared shape first, so a 100-byte body declaring 2 TB
    would be an allocation (or an out-of-memory), not a refusal.
    """
    if not body:
        raise BadInput(f"{where}: empty; send a .npy file (numpy.save) as the request body")
    if body.startswith(b"PK"):
        raise BadInput(f"{where}: an .npz archive; send one array saved with numpy.save")
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = NPY_HEADER_READERS.get(version)
        if read_header is None:
            raise ValueError(f"format version {version[0]}.{version[1]} is not taken; "
                             "save with numpy.save")
        shape, _, dtype = read_header(stream)
    except (ValueError, OSError, EOFError) as err:
        raise BadInput(f"{where}: not a readable .npy array ({err})") from None
    if dtype.hasobject:
        raise BadInput(f"{where}: not a readable .npy array (object arrays are not accepted)")
    declared = math.prod(shape) * dtype.itemsize
    present = len(body) - stream.tell()
    if declared != present:
        raise BadInput(f"{where}: its .npy header declares shape {tuple(shape)} of {dtype} "
                       f"({declared:,} bytes) but {present:,} bytes follow it")
    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise BadInput(f"{where}: not a readable .npy array ({err})") from None


def dump_npy(array: np.ndarray) -> bytes:
    """An array -> .npy bytes."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def check_frames(array: np.ndarray, resolution: int, where: str, ndim: int) -> np.ndarray:
    """uint8 frames (..., resolution, resolution, 3) with `ndim` dimensions, or a `BadInput`."""
    want = ("(B, T, " if ndim == 5 else "(T, " if ndim == 4 else "(") + f"{resolution}, {resolution}, 3)"
    if array.dtype != np.uint8:
        raise BadInput(f"{where}: frames must be uint8; got {array.dtype}")
    if array.ndim != ndim or tuple(array.shape[-3:]) != (resolution, resolution, 3) or 0 in array.shape:
        raise BadInput(f"{where}: frames must have shape {want}; got {tuple(array.shape)}")
    return np.ascontiguousarray(array)
