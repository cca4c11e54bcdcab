"""The disk data set and the mini-batch iterator."""

from __future__ import annotations

import math

import pytest
import torch

import tapegrad as tg
from tapegrad.data import RADIUS, batches, generate_disc_set


def test_radius_gives_a_disk_of_area_one_half():
    assert math.pi * RADIUS**2 == pytest.approx(0.5)
    assert RADIUS == pytest.approx(1 / math.sqrt(2 * math.pi))


def test_disc_set_shapes_dtypes_and_range():
    inputs, targets = generate_disc_set(1000)
    assert isinstance(inputs, tg.Tensor) and isinstance(targets, tg.Tensor)
    assert inputs.shape == (1000, 2) and targets.shape == (1000, 1)
    assert inputs.dtype == targets.dtype == torch.float32
    assert not inputs.requires_grad and not targets.requires_grad
    assert inputs.data.min() >= 0 and inputs.data.max() < 1
    assert set(targets.data.unique().tolist()) == {0.0, 1.0}
    x64, t64 = generate_disc_set(10, dtype=torch.float64)
    assert x64.dtype == t64.dtype == torch.float64


def test_disc_set_labels_follow_the_radius_rule():
    inputs, targets = generate_disc_set(5000, torch.Generator().manual_seed(1), dtype=torch.float64)
    x, t = inputs.data, targets.data.reshape(-1)
    distance = torch.sqrt((x[:, 0] - 0.5) ** 2 + (x[:, 1] - 0.5) ** 2)
    assert torch.equal(t == 1.0, distance < RADIUS)
    # points on both sides close to the circle exist, so the rule above is really tested there
    assert ((distance - RADIUS).abs() < 0.01).sum() > 20


def test_disc_set_classes_are_balanced():
    """P(inside) = 1/2; for n = 20,000 the fraction has std 0.0035: 0.02 is over 5 std."""
    _, targets = generate_disc_set(20_000, torch.Generator().manual_seed(2))
    assert targets.data.mean().item() == pytest.approx(0.5, abs=0.02)


def test_disc_set_is_reproducible_with_a_generator():
    a = generate_disc_set(100, torch.Generator().manual_seed(7))
    b = generate_disc_set(100, torch.Generator().manual_seed(7))
    c = generate_disc_set(100, torch.Generator().manual_seed(8))
    assert torch.equal(a[0].data, b[0].data) and torch.equal(a[1].data, b[1].data)
    assert not torch.equal(a[0].data, c[0].data)
    # without a generator, the global seed decides
    torch.manual_seed(5)
    d = generate_disc_set(100)
    torch.manual_seed(5)
    assert torch.equal(d[0].data, generate_disc_set(100)[0].data)


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
def test_disc_set_refuses_a_bad_size(n):
    with pytest.raises(ValueError, match="positive int"):
        generate_disc_set(n)


# --- batches ----------------------------------------------------------------------


def numbered(n):
    """Inputs whose first column is the sample number, and targets equal to it: easy to follow."""
    x = torch.arange(n, dtype=torch.float64).reshape(n, 1).repeat(1, 2)
    return x, x[:, :1] * 10


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 5), (7, 100), (1, 1)])
def test_batches_cover_every_sample_once_and_keep_pairs(n, batch_size, shuffle):
    x, t = numbered(n)
    seen = []
    sizes = []
    for xb, tb in batches(
        tg.Tensor(x),
        tg.Tensor(t),
        batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(0),
    ):
        assert isinstance(xb, tg.Tensor) and isinstance(tb, tg.Tensor)
        assert torch.equal(tb.data, xb.data[:, :1] * 10)  # inputs stay with their targets
        seen += xb.data[:, 0].tolist()
        sizes.append(len(xb))
    assert sorted(seen) == list(range(n))
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])


def test_batches_without_shuffle_keep_the_order():
    x, t = numbered(9)
    order = [v for xb, _ in batches(x, t, 4) for v in xb.data[:, 0].tolist()]
    assert order == list(range(9))


def test_shuffling_changes_the_order_reproducibly():
    x, t = numbered(50)

    def order(seed):
        g = torch.Generator().manual_seed(seed)
        return [
            v
            for xb, _ in batches(x, t, 8, shuffle=True, generator=g)
            for v in xb.data[:, 0].tolist()
        ]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(50))
    # one generator across epochs gives a new order each epoch
    g = torch.Generator().manual_seed(3)
    epochs = [
        [
            v
            for xb, _ in batches(x, t, 50, shuffle=True, generator=g)
            for v in xb.data[:, 0].tolist()
        ]
        for _ in range(2)
    ]
    assert epochs[0] != epochs[1]


def test_batches_accept_torch_tensors_and_refuse_mismatches():
    x, t = numbered(6)
    assert len(list(batches(x, t, 2))) == 3
    with pytest.raises(ValueError, match="6 inputs but 5 targets"):
        list(batches(x, t[:5], 2))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            list(batches(x, t, bad))
