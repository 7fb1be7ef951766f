# Stub of the compiled module cdrop/_kernels.pyx (checked by mypy's stubtest in CI).
from typing import Any, Callable

import numpy as np

__all__ = [
    "apply",
    "apply_variant",
    "build_info",
    "derive",
    "get_path",
    "get_stream_bytes",
    "hash64",
    "keep_mask",
    "max_threads",
    "set_path",
    "set_default_threads",
    "set_serial_only",
    "set_stream_bytes",
    "BLOCK",
    "OP_DROP",
    "OP_ALPHA",
    "OP_ADD",
    "OP_GMUL",
    "OP_GADD",
]

BLOCK: int
OP_DROP: int
OP_ALPHA: int
OP_ADD: int
OP_GMUL: int
OP_GADD: int

def set_path(name: str) -> str: ...
def get_path() -> str: ...
def set_default_threads(f: Callable[[], int]) -> None: ...
def set_serial_only(flag: bool) -> None: ...
def set_stream_bytes(nbytes: int) -> int: ...
def get_stream_bytes() -> int: ...
def max_threads() -> int: ...
def build_info() -> dict[str, Any]: ...
def hash64(x: int) -> int: ...
def derive(a: int, b: int) -> int: ...
def apply(
    src: np.ndarray,
    dst: np.ndarray,
    seed: int,
    offset: int,
    p: float,
    num_threads: int,
    fresh: bool = ...,
    bf16: bool = ...,
    istrides: tuple[int, ...] | None = ...,
) -> bool: ...
def apply_variant(
    op: int,
    src: np.ndarray,
    dst: np.ndarray,
    seed: int,
    offset: int,
    p: float,
    num_threads: int,
    keep: np.ndarray | None = ...,
    residual: np.ndarray | None = ...,
    bias: np.ndarray | None = ...,
    c0: float = ...,
    c1: float = ...,
    c2: float = ...,
    bf16: bool = ...,
) -> bool: ...
def keep_mask(
    out: np.ndarray, n: int, seed: int, offset: int, p: float, num_threads: int, packed: bool
) -> None: ...
def keep_mask_block(
    out: np.ndarray, seed: int, offset: int, p: float, num_threads: int, istrides: tuple[int, ...]
) -> None: ...
def _scale_inplace(x: np.ndarray, c: float, num_threads: int) -> None: ...
