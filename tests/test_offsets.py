"""Offset max pooling (paper §3.3, Fig. 3) against deliberately naive Python loops."""

import pytest
import torch

import torch.nn.functional as F

from overfeat.offsets import interleave, offset_pool, offsets


def dilated_reference(x: torch.Tensor, k: int, classifier: torch.nn.Sequential) -> torch.Tensor:
    """Stride-1 max pool, then the classifier with its first layer dilated by k."""
    p = F.max_pool2d(x, kernel_size=k, stride=1)
    p = F.conv2d(p, classifier[0].weight, classifier[0].bias, dilation=k)
    return classifier[1:](p)


def naive_offset_pool(x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """pooled[dx,dy][j, i] = max of the k x k block starting at (dy + k*j, dx + k*i)."""
    out = []
    B, C, H, W = x.shape
    for dx, dy in offsets(k):
        h, w = (H - dy) // k, (W - dx) // k
        p = torch.empty(B, C, h, w)
        for j in range(h):
            for i in range(w):
                y, xx = dy + k * j, dx + k * i
                p[:, :, j, i] = x[:, :, y:y + k, xx:xx + k].amax(dim=(2, 3))
        out.append(p)
    return out


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("hw", [(9, 9), (10, 13), (17, 11)])
def test_offset_pool_matches_loop(k, hw):
    g = torch.Generator().manual_seed(k * 100 + hw[0])
    x = torch.randn(2, 3, *hw, generator=g)
    fast = offset_pool(x, k)
    slow = naive_offset_pool(x, k)
    assert len(fast) == k * k
    for a, b in zip(fast, slow):
        assert a.shape == b.shape
        assert torch.equal(a, b)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("hw", [(5, 7), (6, 6), (4, 9)])
def test_interleave_places_every_cell(k, hw):
    """fine[k*j + dy, k*i + dx] = map[dx, dy][j, i], written out cell by cell (loops over dy,
    dx, j, i; no package helper)."""
    H, W = hw
    g = torch.Generator().manual_seed(H * W)
    # The maps in offsets(k)'s documented order: row-major over the offset grid, dy outer.
    order = [(dx, dy) for dy in range(k) for dx in range(k)]
    assert offsets(k) == order
    maps = [torch.randn(2, len(range(dy, H, k)), len(range(dx, W, k)), generator=g)
            for dx, dy in order]
    fine = interleave(maps, k)
    assert fine.shape == (2, H, W)
    expected = torch.full((2, H, W), float("nan"))
    for dy in range(k):
        for dx in range(k):
            m = maps[dy * k + dx]
            for j in range(m.shape[-2]):
                for i in range(m.shape[-1]):
                    expected[:, k * j + dy, k * i + dx] = m[:, j, i]
    assert not torch.isnan(expected).any()
    assert torch.equal(fine, expected)


def test_interleave_rejects_inconsistent_maps():
    maps = [torch.zeros(1, 2, 2) for _ in range(9)]
    maps[4] = torch.zeros(1, 3, 3)
    with pytest.raises(ValueError, match="offset map"):
        interleave(maps, 3)
    with pytest.raises(ValueError, match="expected 9"):
        interleave(maps[:4], 3)


@pytest.mark.parametrize("k,K", [(3, 5), (2, 6), (3, 2)])
@pytest.mark.parametrize("H,W", [(17, 17), (20, 23), (26, 33)])
def test_offsets_equal_stride1_pool_and_dilated_classifier(k, K, H, W):
    """paper §3.3, Fig. 3: offset pooling + classifier + interleave == stride-1 pool + classifier dilated
    by k, and the fine map has H - k*K + 1 rows."""
    if H < k * K or W < k * K:
        pytest.skip("map smaller than one window")
    torch.manual_seed(H + W + K)
    clf = torch.nn.Sequential(torch.nn.Conv2d(4, 6, K), torch.nn.ReLU(), torch.nn.Conv2d(6, 3, 1))
    x = torch.randn(1, 4, H, W)
    fine = interleave([clf(p) for p in offset_pool(x, k)], k)
    ref = dilated_reference(x, k, clf)
    assert fine.shape[-2:] == (H - k * K + 1, W - k * K + 1)
    assert ref.shape == fine.shape
    torch.testing.assert_close(fine, ref, rtol=1e-5, atol=1e-5)


def test_offset_pool_rejects_tiny_maps():
    with pytest.raises(ValueError, match="smaller than the 3x3 pool"):
        offset_pool(torch.zeros(1, 1, 2, 5), 3)
