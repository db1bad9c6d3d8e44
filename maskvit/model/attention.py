"""Window-restricted self-attention with relative position biases (paper §3.3).

Both window kinds of MaskViT are plain reshapes of the (B, T, h, w, D) token grid:
the spatial window is 1 × h × w (one whole frame), the spatiotemporal window
T_w × h' × w' (every frame of an h' × w' patch when T_w = T). Non-overlapping windows
need neither padding nor cyclic shifts, and attention runs through
`scaled_dot_product_attention` on each window as one batch element.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

Window = tuple[int, int, int]  # (t, h, w) extent of one window, in tokens


def resolve_window(window: Window, grid: Window) -> Window:
    """Concrete window for a token grid; a 0 entry means 'the whole axis'."""
    resolved = tuple(g if w == 0 else min(w, g) for w, g in zip(window, grid, strict=True))
    for axis, (w, g) in enumerate(zip(resolved, grid, strict=True)):
        if g % w:
            raise ValueError(
                f"window {tuple(window)} does not tile the token grid {tuple(grid)} "
                f"(axis {axis}: {g} is not a multiple of {w})"
            )
    return resolved  # type: ignore[return-value]


def window_partition(x: torch.Tensor, window: Window) -> torch.Tensor:
    """(B, T, h, w, D) -> (B * num_windows, t_w * h_w * w_w, D)."""
    wt, wh, ww = window
    return rearrange(
        x, "b (nt wt) (nh wh) (nw ww) d -> (b nt nh nw) (wt wh ww) d", wt=wt, wh=wh, ww=ww
    )


def window_merge(windows: torch.Tensor, window: Window, grid: Window) -> torch.Tensor:
    """Inverse of `window_partition`: (B * num_windows, N_w, D) -> (B, T, h, w, D)."""
    wt, wh, ww = window
    t, h, w = grid
    return rearrange(
        windows,
        "(b nt nh nw) (wt wh ww) d -> b (nt wt) (nh wh) (nw ww) d",
        nt=t // wt, nh=h // wh, nw=w // ww, wt=wt, wh=wh, ww=ww,
    )


@lru_cache(maxsize=32)
def relative_position_index(window: Window, max_window: Window) -> torch.Tensor:
    """(N_w, N_w) index into a bias table of (2·t−1)(2·h−1)(2·w−1) entries.

    The table is sized for `max_window`; a smaller window (e.g. fewer frames at decoding
    time) uses the subset of offsets it can see. Equal offsets share one entry.
    """
    # Built on the CPU explicitly: the result is cached, so it must not inherit a default
    # device (e.g. `meta` while a model is being sized).
    coords = torch.stack(
        torch.meshgrid(*(torch.arange(n, device="cpu") for n in window), indexing="ij")
    ).flatten(1)  # (3, N_w)
    offsets = coords[:, :, None] - coords[:, None, :]  # (3, N_w, N_w), each in (−n, n)
    span = [2 * m - 1 for m in max_window]
    shifted = [offsets[i] + max_window[i] - 1 for i in range(3)]  # each in [0, span_i)
    return (shifted[0] * span[1] + shifted[1]) * span[2] + shifted[2]


@lru_cache(maxsize=64)
def relative_position_index_on(window: Window, max_window: Window,
                               device: torch.device) -> torch.Tensor:
    """`relative_position_index` flattened to (N_w²,), kept on `device`.

    Why: copied from the host at every training forward, bair64's indices are ~51 MiB
    per micro-batch, each copy a wait on the GPU. One copy per device and window, shared by
    every layer (a buffer per layer would hold the same indices once per layer).
    """
    return relative_position_index(window, max_window).reshape(-1).to(device)


class _GatherBias(torch.autograd.Function):
    """table.T[:, index]: the bias heads-first, with a cheap gradient.

    Why: gathered row-wise (`table[index]`, then permuted to heads-first) a 16×8×8 window's
    bias costs a strided copy each way, and its gradient a serial `index_put_` scatter of
    10⁶ rows: ~45 ms per layer, ~3 % of the bair64 training step on a CPU. Heads-first,
    the forward is one contiguous `index_select` and the gradient one `scatter_add_` along
    each head's row (~5 ms together).
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(index)
        ctx.rows = table.shape[0]
        return table.t().index_select(1, index)  # (heads, N_w²)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (index,) = ctx.saved_tensors
        heads = grad.shape[0]
        summed = grad.new_zeros(heads, ctx.rows).scatter_add_(
            1, index.expand(heads, -1), grad.contiguous())
        return summed.t().contiguous(), None


class RelativePositionBias(nn.Module):
    """Learned per-head bias for every relative (dt, dy, dx) offset inside a window.

    Swin-style table; 3-D for spatiotemporal windows (the spatial window is the t = 1
    special case). The table is indexed symmetrically: the pair (i, j) and every other pair
    with the same offset read the same entry.

    Without autograd (inference) the gathered bias depends only on the table, so
    `attention_mask` builds it once per window and dtype and keeps it; the key holds the
    table's storage and in-place version, so loading weights or moving the model rebuilds
    it, and switching between train and eval mode drops it. Not part of the state dict.
    """

    def __init__(self, max_window: Window, heads: int) -> None:
        super().__init__()
        self.max_window = tuple(max_window)
        size = 1
        for m in max_window:
            size *= 2 * m - 1
        self.table = nn.Parameter(torch.zeros(size, heads))
        nn.init.trunc_normal_(self.table, std=0.02)
        self._cache: dict[tuple, torch.Tensor] = {}

    def forward(self, window: Window) -> torch.Tensor:
        """Bias of shape (heads, N_w, N_w) for a concrete window."""
        if any(w > m for w, m in zip(window, self.max_window, strict=True)):
            raise ValueError(f"window {window} exceeds the bias table's {self.max_window}")
        index = relative_position_index_on(tuple(window), self.max_window, self.table.device)
        n = math.prod(window)
        return _GatherBias.apply(self.table, index).reshape(-1, n, n)

    def attention_mask(self, window: Window, dtype: torch.dtype) -> torch.Tensor:
        """The bias as an SDPA mask (1, heads, N_w, N_w) in `dtype`, contiguous.

        Rebuilt on every call while autograd records (training), built once otherwise.
        """
        if torch.is_grad_enabled():
            return self(window).to(dtype).unsqueeze(0)
        table = self.table
        key = (tuple(window), dtype, table.device, table.data_ptr(), table._version)
        mask = self._cache.get(key)
        if mask is None:
            if len(self._cache) >= 8:  # stale versions pile up only while weights change
                self._cache.clear()
            mask = self(window).to(dtype).unsqueeze(0).contiguous()
            self._cache[key] = mask
        return mask

    def train(self, mode: bool = True) -> RelativePositionBias:
        self._cache.clear()
        return super().train(mode)


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                     dropout: float = 0.0) -> torch.Tensor:
    """softmax(q·kᵀ/√d + bias)·v, written out, for when the bias needs a gradient.

    Why: with a bias that requires grad, SDPA has no fused CPU kernel and takes its math
    path, which is the same matrix products plus a "safe" softmax that scans every row for
    all -inf entries (`all`, `isneginf`, `where`: ~4 % of the push64 training step). The
    bias here is finite, so a plain softmax gives the same values without that scan.
    CPU training takes `chunked_biased_attention` instead unless it compiles or drops out,
    GPU training SDPA (`WindowAttention.training_path`).
    """
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1)) + bias
    weights = scores.softmax(dim=-1)
    if dropout:
        weights = F.dropout(weights, p=dropout)
    return torch.matmul(weights.to(v.dtype), v)


# Bytes of attention matrix the training attention handles at a time: a few MB, so
# that scores, softmax and their gradients stay in the CPU's cache between the products.
ATTENTION_CHUNK_BYTES = 4 * 2**20


def attention_chunk_rows(heads: int, length: int, itemsize: int,
                         chunk_bytes: int = ATTENTION_CHUNK_BYTES) -> int:
    """Rows of the (windows·heads, N_w, N_w) attention to take at once: whole windows
    (a multiple of `heads`) when one fits in `chunk_bytes`, else a divisor of `heads`."""
    rows = max(1, chunk_bytes // (length * length * itemsize))
    if rows >= heads:
        return rows - rows % heads
    return max(d for d in range(1, heads + 1) if heads % d == 0 and d <= rows)


class _ChunkedBiasedAttention(torch.autograd.Function):
    """softmax(q·kᵀ·s + bias)·v and its gradients (the bias's too), a chunk at a time.

    Why: written as whole-tensor operations (`biased_attention`), the training attention
    is bound by memory, not arithmetic: the scores, the softmax, its gradient and the
    bias's gradient each stream the whole (windows·heads, N_w, N_w) matrix through memory
    (push64 fp32: 38 MB per spatiotemporal layer, at ~20 GFLOP/s on a CPU). Here the bias
    is added inside the product (`baddbmm`), the softmax and its gradient run in place,
    and everything but the saved probabilities stays in a cache-sized chunk. In bf16 the
    softmax computes in fp32 and rounds its output to bf16, as autocast's softmax followed
    by the cast to bf16 does; the bias's gradient is summed in fp32.
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,  # type: ignore[override]
                bias: torch.Tensor, rows: int) -> torch.Tensor:
        n, h, length, e = q.shape
        q3, k3, v3 = (t.reshape(n * h, length, e) for t in (q, k, v))
        scale = e**-0.5
        bias_rows = _bias_rows(bias.to(q.dtype), rows)
        probs = q.new_empty(n * h, length, length)
        out = q.new_empty(n * h, length, e)
        for start in range(0, n * h, rows):
            chunk = slice(start, min(n * h, start + rows))
            p = probs[chunk]
            offset = start % h  # 0 for whole windows; the first head of a part-window chunk
            torch.baddbmm(bias_rows[offset: offset + p.shape[0]], q3[chunk],
                          k3[chunk].transpose(1, 2), alpha=scale, out=p)
            torch.ops.aten._softmax.out(p, -1, False, out=p)
            torch.bmm(p, v3[chunk], out=out[chunk])
        ctx.save_for_backward(q3, k3, v3, probs)
        ctx.rows, ctx.shape, ctx.bias_dtype = rows, (n, h, length, e), bias.dtype
        return out.view(n, h, length, e)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        q3, k3, v3, probs = ctx.saved_tensors
        (n, h, length, e), rows = ctx.shape, ctx.rows
        grad3 = grad.reshape(n * h, length, e)
        dq, dk, dv = (torch.empty_like(q3) for _ in range(3))
        dscores = q3.new_empty(min(rows, n * h), length, length)
        summed = torch.promote_types(q3.dtype, torch.float32)  # bf16 sums in fp32
        dbias = q3.new_zeros(h, length, length, dtype=summed)
        for start in range(0, n * h, rows):
            chunk = slice(start, min(n * h, start + rows))
            p = probs[chunk]
            ds = dscores[: p.shape[0]]
            torch.bmm(p.transpose(1, 2), grad3[chunk], out=dv[chunk])
            torch.bmm(grad3[chunk], v3[chunk].transpose(1, 2), out=ds)
            torch.ops.aten._softmax_backward_data.out(ds, p, -1, ds.dtype, grad_input=ds)
            if rows >= h:
                dbias += ds.view(-1, h, length, length).sum(0, dtype=summed)
            else:
                dbias[start % h: start % h + ds.shape[0]] += ds
            torch.bmm(ds, k3[chunk], out=dq[chunk])
            torch.bmm(ds.transpose(1, 2), q3[chunk], out=dk[chunk])
        scale = e**-0.5
        dq.mul_(scale)
        dk.mul_(scale)
        return (dq.view(n, h, length, e), dk.view(n, h, length, e), dv.view(n, h, length, e),
                dbias.to(ctx.bias_dtype), None)


def _bias_rows(bias: torch.Tensor, rows: int) -> torch.Tensor:
    """The (heads, length, length) bias repeated to cover one chunk of `rows` rows (the
    bias itself when a chunk is part of one window)."""
    h, length, _ = bias.shape
    if rows < h:
        return bias
    return bias.unsqueeze(0).expand(rows // h, h, length, length).reshape(rows, length, length)


def chunked_biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             bias: torch.Tensor, chunk_bytes: int = ATTENTION_CHUNK_BYTES,
                             ) -> torch.Tensor:
    """softmax(q·kᵀ/√d + bias)·v for q, k, v (n, heads, length, e) of one dtype and bias
    (heads, length, length), with the gradients of all four: `biased_attention`'s
    values, in chunks of about `chunk_bytes` of attention matrix."""
    n, h, length, _ = q.shape
    rows = attention_chunk_rows(h, length, q.element_size(), chunk_bytes)
    return _ChunkedBiasedAttention.apply(q, k, v, bias, rows)


class WindowAttention(nn.Module):
    """Multi-head self-attention restricted to non-overlapping windows of the token grid."""

    def __init__(self, dim: int, heads: int, window: Window, max_grid: Window,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.window = tuple(window)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.bias = RelativePositionBias(resolve_window(self.window, max_grid), heads)

    @staticmethod
    def fused_training_attention(dropout: float) -> bool:
        """Whether CPU training takes `chunked_biased_attention` (without dropout, eager).

        `torch.compile` keeps the whole-tensor form, which it fuses itself.
        """
        return not dropout and not torch.compiler.is_compiling()

    @classmethod
    def training_path(cls, device: torch.device, dropout: float) -> str:
        """How training attends on `device`: "chunked" (`chunked_biased_attention`, sized
        for a CPU's cache), "sdpa" (a GPU: SDPA's fused kernel, which takes the bias's
        gradient itself, in one piece) or "written" (`biased_attention`)."""
        if device.type not in ("cpu", "meta"):
            return "sdpa"
        return "chunked" if cls.fused_training_attention(dropout) else "written"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, h, w, D) -> (B, T, h, w, D)."""
        grid = tuple(x.shape[1:4])
        window = resolve_window(self.window, grid)
        windows = window_partition(x, window)  # (B·nW, N_w, D)
        q, k, v = rearrange(self.qkv(windows), "n l (three h e) -> three n h l e",
                            three=3, h=self.heads)
        dropout = self.dropout if self.training else 0.0
        bias = self.bias.attention_mask(window, q.dtype)  # (1, heads, N_w, N_w)
        path = self.training_path(q.device, dropout) if bias.requires_grad else "sdpa"
        if path == "sdpa":  # inference (the bias built once), or training on a GPU
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
        elif path == "chunked":
            out = chunked_biased_attention(q, k, v, bias[0])
        else:
            out = biased_attention(q, k, v, bias, dropout)
        out = self.proj(rearrange(out, "n h l e -> n l (h e)"))
        return window_merge(out, window, grid)
