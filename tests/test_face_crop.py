"""HJB face crops: raw inclusive bbox crop + bilinear 112x112 resize, differentiable; boxes from masks."""
import torch
import torch.nn.functional as F
import pytest

from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.face.face_crop import boxes_from_masks, boxes_to_pixels, crop_faces


def test_crop_matches_the_official_slicing():
    frames = torch.rand(3, 3, 64, 80) * 2 - 1
    boxes = torch.tensor([[10, 5, 40, 50], [0, 0, 79, 63], [30, 20, 31, 21]])
    out = crop_faces(frames, boxes)
    assert out.shape == (3, 3, 112, 112)
    for f, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        want = F.interpolate(frames[f:f + 1, :, y0:y1 + 1, x0:x1 + 1], size=(112, 112), mode="bilinear",
                             align_corners=False)
        torch.testing.assert_close(out[f:f + 1], want)


def test_crop_is_differentiable_and_local():
    frames = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    crop_faces(frames, torch.tensor([8, 8, 23, 31])).sum().backward()
    g = frames.grad.abs().sum(1)
    assert g[:, 8:32, 8:24].min() > 0
    outside = g.clone()
    outside[:, 8:32, 8:24] = 0
    assert outside.abs().max() == 0


def test_crop_checks_boxes():
    with pytest.raises(StableAnimatorError, match="one box per frame"):
        crop_faces(torch.zeros(2, 3, 16, 16), torch.zeros(3, 4))


def test_boxes_from_masks_and_empty_frames():
    masks = torch.zeros(3, 40, 50)
    masks[0, 5:20, 7:30] = 1
    masks[1, 2:4, 3:5] = 0.6
    masks[1, 30:35, 40:45] = 1  # two blobs: one box around both, as the official union
    masks[2, 10:20, 10:20] = 0.4  # below threshold: empty
    boxes, empty = boxes_from_masks(masks)
    assert boxes.tolist() == [[7, 5, 29, 19], [3, 2, 44, 34], [0, 0, 49, 39]]
    assert empty.tolist() == [False, False, True]


def test_detector_boxes_to_inclusive_pixels():
    px = boxes_to_pixels(torch.tensor([[272.0, 208.0, 400.0, 352.0], [-5.0, 3.2, 700.0, 9.9]]), 640, 640)
    assert px.tolist() == [[272, 208, 399, 351], [0, 3, 639, 9]]
