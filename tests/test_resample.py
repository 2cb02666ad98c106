"""models.resample: nearest 2x upsampling and 2x2 average pooling give ATen's bits, forward and backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.resample import AvgPool2x, Upsample2x, _block_sum, avg_pool2x, upsample2x

SHAPES = [(8, 32, 16, 16), (3, 5, 4, 6), (2, 1, 2, 2), (8, 128, 4, 4)]


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The int32 bits of ``t``, every NaN made the same NaN (payloads are not compared)."""
    t = t.contiguous()
    return torch.where(t.isnan(), torch.full_like(t, float("nan")), t).view(torch.int32)


def _wide(shape: tuple[int, ...]) -> torch.Tensor:
    # magnitudes over ~20 decades: any other order of the four additions rounds differently
    return torch.randn(shape) * torch.exp(torch.randn(shape) * 8)


def _zeros(shape: tuple[int, ...]) -> torch.Tensor:
    t = torch.randn(shape)
    t[torch.rand(shape) < 0.5] = 0.0
    t[torch.rand(shape) < 0.5] = -0.0
    t[torch.rand(shape) < 0.05] = float("inf")
    t[torch.rand(shape) < 0.05] = -float("inf")
    return t


def _cancelling(shape: tuple[int, ...]) -> torch.Tensor:
    t = torch.randn(shape)
    t.view(-1)[1::2] = -t.view(-1)[0::2]
    return t


VALUES = {"wide": _wide, "zeros": _zeros, "cancelling": _cancelling, "negative zeros": lambda s: -torch.zeros(s)}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("values", VALUES)
@pytest.mark.parametrize(
    "ours, aten",
    [
        (upsample2x, lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest")),
        (avg_pool2x, lambda x: F.avg_pool2d(x, 2)),
    ],
    ids=["upsample2x", "avg_pool2x"],
)
def test_same_bits_as_aten_forward_and_backward(shape, values, ours, aten) -> None:
    torch.manual_seed(0)
    gen = VALUES[values]
    x = gen(shape).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), aten(x_ref)
    grad = gen(tuple(y_ref.shape))
    y.backward(grad)
    y_ref.backward(grad)
    assert torch.equal(_bits(y), _bits(y_ref))
    assert torch.equal(_bits(x.grad), _bits(x_ref.grad))


def test_another_order_of_additions_is_caught() -> None:
    """The inputs above tell orders apart: the pairwise sum (x00 + x01) + (x10 + x11) differs from ATen's."""
    torch.manual_seed(0)
    x = _wide((8, 32, 16, 16))
    v = x.view(8, 32, 8, 2, 8, 2)
    pairwise = (v[:, :, :, 0, :, 0] + v[:, :, :, 0, :, 1]) + (v[:, :, :, 1, :, 0] + v[:, :, :, 1, :, 1])
    assert torch.equal(_bits(_block_sum(x)), _bits(F.avg_pool2d(x, 2) * 4))
    assert not torch.equal(_bits(pairwise), _bits(_block_sum(x)))


def test_modules_and_other_inputs_take_atens_path() -> None:
    """Channels-last, bf16 and odd sides go to the ATen ops; the modules equal the functions."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(Upsample2x()(x), upsample2x(x)) and torch.equal(AvgPool2x()(x), avg_pool2x(x))
    cl = x.to(memory_format=torch.channels_last)
    assert torch.equal(upsample2x(cl), F.interpolate(cl, scale_factor=2.0, mode="nearest"))
    assert upsample2x(cl).is_contiguous(memory_format=torch.channels_last)
    bf = x.bfloat16()
    assert torch.equal(avg_pool2x(bf), F.avg_pool2d(bf, 2))
    odd = torch.randn(2, 4, 5, 7)
    assert torch.equal(avg_pool2x(odd), F.avg_pool2d(odd, 2))


def test_double_backward() -> None:
    """The backward is built from differentiable ops: a gradient penalty through it equals ATen's."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    for fn, ref in (
        (upsample2x, lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")),
        (avg_pool2x, lambda t: F.avg_pool2d(t, 2)),
    ):
        (g,) = torch.autograd.grad((fn(x) ** 3).sum(), x, create_graph=True)
        (g_ref,) = torch.autograd.grad((ref(x_ref) ** 3).sum(), x_ref, create_graph=True)
        g.square().sum().backward()
        g_ref.square().sum().backward()
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=0)
        x.grad = x_ref.grad = None
