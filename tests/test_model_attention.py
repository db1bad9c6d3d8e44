import math

import pytest
import torch
from einops import rearrange

from maskvit.model.attention import (
    RelativePositionBias,
    WindowAttention,
    relative_position_index,
    resolve_window,
    window_merge,
    window_partition,
)


@pytest.mark.parametrize("window", [(1, 4, 4), (4, 2, 2), (2, 2, 4)])
def test_partition_then_merge_round_trips_exactly(window):
    x = torch.randn(2, 4, 4, 4, 3)
    windows = window_partition(x, window)
    assert windows.shape == (2 * 64 // math.prod(window), math.prod(window), 3)
    assert torch.equal(window_merge(windows, window, (4, 4, 4)), x)


def test_partition_groups_tokens_of_one_window_together():
    x = torch.arange(4 * 4 * 4).float().view(1, 4, 4, 4, 1)  # token id = its raster index
    windows = window_partition(x, (4, 2, 2))
    first = windows[0, :, 0].long().tolist()
    # First window: all 4 frames of the top-left 2x2 patch.
    expected = [t * 16 + y * 4 + x for t in range(4) for y in range(2) for x in range(2)]
    assert first == expected


def _reference_full_attention(attn: WindowAttention, x: torch.Tensor, window) -> torch.Tensor:
    """Full attention over all tokens, restricted by a block-diagonal mask carrying the bias."""
    b, t, h, w, d = x.shape
    grid = (t, h, w)
    window = resolve_window(window, grid)
    coords = torch.stack(torch.meshgrid(*(torch.arange(n) for n in grid), indexing="ij"), -1)
    coords = coords.reshape(-1, 3)  # raster order of the full sequence
    window_id = [tuple((c // torch.tensor(window)).tolist()) for c in coords]
    local = coords % torch.tensor(window)
    local_index = (local[:, 0] * window[1] + local[:, 1]) * window[2] + local[:, 2]
    bias = attn.bias(window)  # (heads, Nw, Nw)
    n = coords.shape[0]
    full_bias = torch.full((attn.heads, n, n), float("-inf"))
    for i in range(n):
        for j in range(n):
            if window_id[i] == window_id[j]:
                full_bias[:, i, j] = bias[:, local_index[i], local_index[j]]
    seq = x.reshape(b, n, d)
    q, k, v = rearrange(attn.qkv(seq), "b l (three h e) -> three b h l e", three=3, h=attn.heads)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + full_bias
    out = rearrange(scores.softmax(-1) @ v, "b h l e -> b l (h e)")
    return attn.proj(out).reshape(b, t, h, w, d)


@pytest.mark.parametrize("window", [(1, 4, 4), (0, 2, 2)], ids=["spatial", "spatiotemporal"])
def test_window_attention_equals_block_diagonal_full_attention(window):
    torch.manual_seed(0)
    attn = WindowAttention(dim=16, heads=2, window=window, max_grid=(4, 4, 4))
    with torch.no_grad():
        attn.bias.table.normal_()  # non-trivial biases
        x = torch.randn(2, 4, 4, 4, 16)
        assert torch.allclose(attn(x), _reference_full_attention(attn, x, window), atol=1e-5)


def test_relative_bias_table_size_and_symmetric_offsets_share_entries():
    bias = RelativePositionBias((4, 2, 2), heads=3)
    assert bias.table.shape == ((2 * 4 - 1) * (2 * 2 - 1) * (2 * 2 - 1), 3)
    index = relative_position_index((4, 2, 2), (4, 2, 2))
    coords = torch.stack(torch.meshgrid(*(torch.arange(n) for n in (4, 2, 2)), indexing="ij"), -1)
    coords = coords.reshape(-1, 3)
    n = coords.shape[0]
    seen = {}
    for i in range(n):
        for j in range(n):
            offset = tuple((coords[i] - coords[j]).tolist())
            seen.setdefault(offset, set()).add(int(index[i, j]))
    assert all(len(entries) == 1 for entries in seen.values())  # one entry per offset
    assert len({next(iter(e)) for e in seen.values()}) == len(seen)  # distinct offsets differ
    assert int(index.max()) < bias.table.shape[0]


def test_smaller_window_reuses_the_table_of_the_largest():
    bias = RelativePositionBias((4, 2, 2), heads=2)
    small = bias((2, 2, 2))
    large = bias((4, 2, 2))
    # Offsets available in both windows read the same entries: the 2-frame window equals
    # the top-left block of the 4-frame window's bias.
    assert torch.equal(small, large[:, :8, :8])


def test_window_that_does_not_tile_the_grid_is_rejected():
    with pytest.raises(ValueError, match="does not tile"):
        resolve_window((1, 3, 3), (4, 4, 4))


def test_written_out_biased_attention_matches_sdpa_in_values_and_gradients():
    """Training takes `biased_attention` (no safe-softmax scan); inference takes SDPA."""
    import torch.nn.functional as F

    from maskvit.model.attention import biased_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(6, 4, 16, 8, requires_grad=True) for _ in range(3))
    bias = torch.randn(1, 4, 16, 16, requires_grad=True)
    ours = biased_attention(q, k, v, bias)
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(ours)
    grads = [torch.autograd.grad((out * weights).sum(), (q, k, v, bias)) for out in (ours, theirs)]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = biased_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias.bfloat16())
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), theirs, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("window", [(4, 4, 4), (2, 4, 4), (1, 4, 4)])
def test_heads_first_bias_gather_matches_plain_indexing_in_values_and_gradients(window):
    """The bias is gathered heads-first by `_GatherBias`, with its own backward: each table
    entry's gradient must be the sum over every (i, j) pair with that offset, as plain
    indexing gives."""
    torch.manual_seed(0)
    bias = RelativePositionBias((4, 4, 4), heads=3)
    out = bias(window)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    fast = bias.table.grad.clone()
    bias.table.grad = None
    n = out.shape[1]
    index = relative_position_index(window, (4, 4, 4)).reshape(-1)
    plain = bias.table[index].reshape(n, n, -1).permute(2, 0, 1)
    plain.backward(upstream)
    torch.testing.assert_close(out, plain, rtol=0, atol=0)
    torch.testing.assert_close(fast, bias.table.grad, rtol=1e-5, atol=1e-5)
    assert fast.abs().sum() > 0  # every window size reaches the table


@pytest.mark.parametrize("windows, chunk_bytes", [
    (5, 2 * 4 * 24 * 24 * 8),   # two windows a chunk, the last chunk one window
    (3, 2 * 24 * 24 * 8),       # two heads of one window a chunk (smaller than a window)
    (3, 1),                     # one head a chunk
    (7, 10**9),                 # everything in one chunk
])
def test_chunked_attention_matches_written_out_attention_in_values_and_gradients(windows, chunk_bytes):
    """The training path (`chunked_biased_attention`: bias added inside the product,
    in-place softmax and its gradient, chunk by chunk) computes what `biased_attention`
    does, with the bias's gradient, however the rows are cut."""
    from maskvit.model.attention import biased_attention, chunked_biased_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(windows, 4, 24, 8, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    bias = (0.3 * torch.randn(4, 24, 24, dtype=torch.float64)).requires_grad_()
    ours = chunked_biased_attention(q, k, v, bias, chunk_bytes)
    theirs = biased_attention(q, k, v, bias.unsqueeze(0))
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)
    upstream = torch.randn_like(ours)
    grads = [torch.autograd.grad(out, (q, k, v, bias), upstream) for out in (ours, theirs)]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_attention_chunk_rows_takes_whole_windows_or_a_divisor_of_the_heads():
    from maskvit.model.attention import attention_chunk_rows

    assert attention_chunk_rows(heads=4, length=64, itemsize=4, chunk_bytes=64 * 64 * 4 * 10) == 8
    assert attention_chunk_rows(heads=4, length=64, itemsize=4, chunk_bytes=64 * 64 * 4 * 3) == 2
    assert attention_chunk_rows(heads=6, length=64, itemsize=4, chunk_bytes=64 * 64 * 4 * 5) == 3
    assert attention_chunk_rows(heads=4, length=1024, itemsize=4, chunk_bytes=1) == 1


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_attention_takes_the_chunked_path_with_the_same_gradients(monkeypatch, precision):
    """A window attention layer's training step gives the same output and parameter
    gradients with the chunked attention as with the written-out one (bf16 autocast: to
    bf16's precision), and does take the chunked path."""
    import maskvit.model.attention as attention
    from maskvit.model.attention import WindowAttention

    torch.manual_seed(0)  # 40 seeds: worst bf16 difference 0.012 of the largest value, within 0.03
    layer = WindowAttention(dim=16, heads=2, window=(2, 2, 2), max_grid=(4, 4, 4))
    x = torch.randn(2, 4, 4, 4, 16)
    calls = []
    chunked = attention.chunked_biased_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return chunked(*args, **kwargs)

    monkeypatch.setattr(attention, "chunked_biased_attention", counting)
    grads = []
    for fused in (True, False):
        monkeypatch.setattr(WindowAttention, "fused_training_attention",
                            staticmethod(lambda dropout, fused=fused: fused))
        layer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = layer(x)
        out.float().pow(2).sum().backward()
        grads.append([out.detach().float()] + [p.grad.clone() for p in layer.parameters()])
    assert len(calls) == 1
    tolerance = dict(rtol=1e-5, atol=1e-6) if precision == "fp32" else dict(rtol=0.03, atol=0.03)
    for a, b in zip(*grads, strict=True):
        scale = b.abs().max().clamp(min=1e-6)  # gradients differ in size: compare relative
        torch.testing.assert_close(a / scale, b / scale, **tolerance)
    monkeypatch.undo()
    assert WindowAttention.fused_training_attention(0.0)
    assert not WindowAttention.fused_training_attention(0.1)
