import pytest
import torch

from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.image_ops import check_size, resize_lanczos, resize_stretch, to_rgb


def test_to_rgb_handles_gray_rgba_and_single_images():
    gray = torch.rand(2, 8, 9, 1)
    assert torch.equal(to_rgb(gray), gray.expand(2, 8, 9, 3))
    rgba = torch.rand(1, 8, 9, 4)
    assert torch.equal(to_rgb(rgba), rgba[..., :3])
    assert to_rgb(torch.rand(8, 9, 3)).shape == (1, 8, 9, 3)
    with pytest.raises(StableAnimatorError, match="5 channels"):
        to_rgb(torch.rand(1, 4, 4, 5))


def test_check_size_names_the_bad_side_and_a_fix():
    check_size(576, 1024)
    with pytest.raises(StableAnimatorError, match=r"height=1000 must be a multiple of 64.*576x1024"):
        check_size(576, 1000)


def test_resizes_stretch_without_crop():
    img = torch.zeros(1, 10, 20, 3)
    img[:, :, :10, 0] = 1
    for out in (resize_lanczos(img, 64, 128), resize_stretch(img, 64, 128)):
        assert out.shape == (1, 128, 64, 3)
        assert out[0, 64, 5, 0] > 0.99 and out[0, 64, 58, 0] < 0.01


def test_empty_batches_are_named():
    with pytest.raises(StableAnimatorError, match="batch is empty"):
        to_rgb(torch.zeros(0, 3, 0, 0))
