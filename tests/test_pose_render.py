"""The official-style renderer: limbs, joints, hands and face at the right places in the right colours."""
import colorsys

import numpy as np
import pytest

from stableanimator_core.pose.pose_format import PoseFrame
from stableanimator_core.pose.pose_render import render_pose, render_poses


def _skeleton(w, h):
    """Neck (1) and right hip (8) at full confidence, right shoulder (2) at 0.5, on a w x h canvas."""
    p = np.zeros((134, 3), np.float32)
    p[1] = (0.5 * w, 0.3 * h, 1.0)    # neck
    p[8] = (0.5 * w, 0.6 * h, 1.0)    # right hip
    p[2] = (0.3 * w, 0.3 * h, 0.5)    # right shoulder
    return p


@pytest.mark.parametrize("W,H", [(512, 512), (576, 1024)])
def test_body_limbs_and_joints(W, H):
    img = render_pose(PoseFrame(W, H, _skeleton(W, H)[None]), W, H).astype(int)
    assert img.shape == (H, W, 3)
    x = W // 2
    # neck -> right hip is limb 6, green (0,255,0), conf 1*1, dimmed by 0.6 -> about 153, one to two px wide
    row = img[int(0.45 * H)]
    assert 125 <= row[x - 1:x + 2, 1].max() <= 155
    assert row[x - 1:x + 2, 0].max() < 10 and row[x - 1:x + 2, 2].max() < 10
    assert (row[:, 1] > 30).sum() <= 3, "sticks are drawn at 2160 px and downscaled, so they are thin"
    # neck -> right shoulder is limb 0, red (255,0,0) x 1 x 0.5 x 0.6 -> about 76
    col = img[:, int(0.4 * W)]
    y = int(0.3 * H)
    assert 60 <= col[y - 1:y + 2, 0].max() <= 80 and col[y - 1:y + 2, 1:].max() < 10
    # joints: full colour (drawn after the 0.6 dimming), scaled by their score
    neck = img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)
    best = neck[np.argmax(neck[:, 0])]
    assert best[0] > 200 and 60 < best[1] < 95 and best[2] < 10          # (255, 85, 0)
    hip = img[int(0.6 * H) - 1:int(0.6 * H) + 2, x - 1:x + 2].reshape(-1, 3)
    best = hip[np.argmax(hip[:, 1])]
    assert best[0] < 10 and best[1] > 200 and 130 < best[2] < 175        # (0, 255, 170)
    sh = img[y - 1:y + 2, int(0.3 * W) - 1:int(0.3 * W) + 2].reshape(-1, 3)
    best = sh[np.argmax(sh[:, 0])]
    assert 100 < best[0] <= 128 and 60 < best[1] <= 86 and best[2] < 10  # (255, 170, 0) x 0.5
    # nothing elsewhere
    assert img[:, : int(0.25 * W)].max() == 0 and img[int(0.7 * H):].max() == 0


def test_low_confidence_limbs_and_joints_are_skipped():
    p = _skeleton(512, 512)
    p[2, 2] = 0.29  # below 0.3: neither the shoulder joint nor the neck-shoulder limb
    img = render_pose(PoseFrame(512, 512, p[None]), 512, 512)
    assert img[:, : int(0.45 * 512)].max() == 0


def test_hands_and_face_at_full_scale():
    """At a 2160 short side nothing is resized, so the drawing can be checked pixel for pixel."""
    W = H = 2160
    p = np.zeros((134, 3), np.float32)
    p[92 + 0] = (1000, 1000, 1.0)   # left wrist
    p[92 + 1] = (1100, 1000, 1.0)   # thumb 1: edge 0, hue 0 -> red
    p[113 + 0] = (1000, 1400, 0.5)  # right wrist
    p[113 + 5] = (1000, 1600, 0.5)  # index 1: edge 4, hue 4/20 -> (255*0.25 scaled)
    p[24 + 10] = (1500, 500, 0.8)   # one face point, grey 204
    img = render_pose(PoseFrame(W, H, p[None]), W, H)
    np.testing.assert_array_equal(img[1000, 1050], (255, 0, 0))            # 2-px line, full score
    np.testing.assert_array_equal(img[1000, 1000], (0, 0, 255))            # joint disc (0,0,score)
    np.testing.assert_array_equal(img[1000, 1096], (0, 0, 255))            # radius 4
    r, g, b = colorsys.hsv_to_rgb(4 / 20, 1, 1)
    s = int(0.5 * 0.5 * 255)
    np.testing.assert_allclose(img[1500, 1000], np.round([r * s, g * s, b * s]), atol=1)
    np.testing.assert_array_equal(img[1400, 1000], (0, 0, int(0.5 * 255)))
    np.testing.assert_array_equal(img[500, 1500], (204, 204, 204))         # face disc radius 3
    np.testing.assert_array_equal(img[500, 1503], (204, 204, 204))
    assert img[500, 1505].max() == 0
    # points at the origin (absent) are never drawn
    assert img[:5, :5].max() == 0


def test_empty_frames_render_black_any_aspect():
    out = render_poses([PoseFrame(100, 200), PoseFrame(100, 200)], 576, 1024)
    assert out.shape == (2, 1024, 576, 3) and out.max() == 0


def test_pose_is_stretched_from_its_canvas_to_the_output():
    """Keypoints are relative to their canvas: a pose on a 1000x1000 canvas at (500, 300)-(500, 600)
    lands at the same relative place in a 576x1024 image."""
    p = _skeleton(1000, 1000)
    img = render_pose(PoseFrame(1000, 1000, p[None]), 576, 1024).astype(int)
    assert img[int(0.45 * 1024), 287:290, 1].max() > 120


def test_far_and_broken_points_draw_without_error():
    """Points far off the canvas or NaN (a broken editor) neither crash cv2 nor paint the frame."""
    p = _skeleton(64, 64)
    p[8] = (1e12, -1e12, 1.0)
    p[2] = (np.nan, 10, 1.0)
    img = render_pose(PoseFrame(64, 64, p[None]), 64, 64)
    assert img.shape == (64, 64, 3) and 0 < (img.max(-1) > 0).mean() < 0.2


def test_canvas_sizes_the_official_renderer_cannot_draw():
    from stableanimator_core.pose.pose_render import canvas_problem
    assert canvas_problem(576, 1024) is None and canvas_problem(64, 512) is None   # 8x apart: 2160 x 17280
    assert "7.2 GB per frame" in canvas_problem(8, 4096)
    assert "empty" in canvas_problem(0, 64)
