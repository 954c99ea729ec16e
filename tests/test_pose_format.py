"""POSE_KEYPOINT (comfyui_controlnet_aux's OpenPose JSON) in and out, and face boxes from it."""
import json
import logging

import numpy as np
import pytest

from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.pose.pose_face_boxes import boxes_to_masks, face_boxes
from stableanimator_core.pose.pose_format import RAW_KEY, PoseFrame, from_pose_keypoint, to_pose_keypoint


def _people(n, seed=0, w=640, h=480):
    rng = np.random.default_rng(seed)
    p = np.zeros((n, 134, 3), np.float32)
    p[..., 0] = rng.uniform(1, w - 1, (n, 134))
    p[..., 1] = rng.uniform(1, h - 1, (n, 134))
    p[..., 2] = rng.uniform(0.0, 1.0, (n, 134))
    return p


def test_round_trip_keeps_everything_and_is_json():
    frames = [PoseFrame(640, 480, _people(2)), PoseFrame(640, 480), PoseFrame(640, 480, _people(1, 3))]
    data = json.loads(json.dumps(to_pose_keypoint(frames)))
    back = from_pose_keypoint(data)
    assert len(back) == 3 and back[1].empty
    for a, b in zip(frames, back):
        assert (a.width, a.height) == (b.width, b.height)
        np.testing.assert_allclose(a.people, b.people, atol=1e-5)


def test_written_fields_follow_aux_conventions():
    p = _people(1)
    p[0, 92:113, 2] = 0.1   # whole left hand below 0.3 -> None, as aux writes it
    p[0, 0, 2] = 0.2        # nose missing -> 0,0,0
    p[0, 1, 2] = 0.9
    d = to_pose_keypoint([PoseFrame(640, 480, p)])[0]
    assert d["canvas_width"] == 640 and d["canvas_height"] == 480
    person = d["people"][0]
    body = person["pose_keypoints_2d"]
    assert len(body) == 54 and body[:3] == [0.0, 0.0, 0.0]
    assert body[3:6] == pytest.approx([p[0, 1, 0], p[0, 1, 1], 1.0])  # pixels, confidence 1.0
    assert set(body[2::3]) <= {0.0, 1.0}
    assert len(person["face_keypoints_2d"]) == 70 * 3          # 68 + the two eyes
    assert person["hand_left_keypoints_2d"] is None
    assert len(person["hand_right_keypoints_2d"]) == 63
    assert len(person[RAW_KEY]) == 134 * 3


def test_reads_aux_output_pixel_and_normalised():
    body = [0.0] * 54
    body[3:6] = [320.0, 100.0, 1.0]     # neck
    body[24:27] = [300.0, 300.0, 1.0]   # right hip (8)
    aux_frame = {"people": [{"pose_keypoints_2d": body, "face_keypoints_2d": None,
                             "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}],
                 "canvas_width": 640, "canvas_height": 480}
    f = from_pose_keypoint([aux_frame])[0]
    np.testing.assert_allclose(f.people[0, 1], (320, 100, 1))
    np.testing.assert_allclose(f.people[0, 8], (300, 300, 1))
    assert f.people[0, 24:, 2].max() == 0
    norm = [v / 640 if i % 3 == 0 else v / 480 if i % 3 == 1 else v for i, v in enumerate(body)]
    g = from_pose_keypoint({**aux_frame, "people": [{"pose_keypoints_2d": norm}]})[0]
    np.testing.assert_allclose(g.people[0, 1], (320, 100, 1), atol=1e-4)


def test_stale_raw_key_is_ignored():
    d = to_pose_keypoint([PoseFrame(640, 480, _people(1, 5))])
    person = d[0]["people"][0]
    i = next(k for k in range(18) if person["pose_keypoints_2d"][3 * k + 2] == 1.0)
    person["pose_keypoints_2d"][3 * i] += 40  # an editor moved a point and kept our extra key
    f = from_pose_keypoint(d)[0]
    assert f.people[0, i, 0] == pytest.approx(person["pose_keypoints_2d"][3 * i])
    assert f.people[0, i, 2] == 1.0


def test_bad_input_is_a_clear_error():
    with pytest.raises(StableAnimatorError, match="canvas_width"):
        from_pose_keypoint([{"people": []}])
    with pytest.raises(StableAnimatorError, match="POSE_KEYPOINT"):
        from_pose_keypoint("nope")


def test_face_boxes_and_masks(caplog):
    p = np.zeros((2, 134, 3), np.float32)
    p[0, 24:92] = (0, 0, 0)
    p[0, 24, :] = (100, 50, 0.9); p[0, 25, :] = (140, 110, 0.9); p[0, 26, :] = (600, 400, 0.1)  # low score ignored
    p[1, 30, :] = (300, 200, 0.9); p[1, 31, :] = (320, 240, 0.9)                                 # second face
    frames = [PoseFrame(640, 480, p[:1]), PoseFrame(640, 480, p), PoseFrame(640, 480)]
    with caplog.at_level(logging.WARNING, logger="StableAnimator"):
        boxes, found = face_boxes(frames, 320, 240, expand=1.0)
    np.testing.assert_allclose(boxes[0], [50, 25, 70, 55])           # scaled from 640x480 to 320x240
    np.testing.assert_allclose(boxes[1], [50, 25, 160, 120])         # union of both faces
    np.testing.assert_allclose(boxes[2], [0, 0, 320, 240])           # no face: whole frame
    assert found.tolist() == [True, True, False]
    assert any("no face keypoints" in r.message for r in caplog.records)
    boxes2, _ = face_boxes(frames[:1], 320, 240, expand=2.0)
    np.testing.assert_allclose(boxes2[0], [40, 10, 80, 70])
    masks = boxes_to_masks(np.array([[50.2, 25.0, 69.6, 55.0]]), 320, 240)
    assert masks.shape == (1, 240, 320) and masks.dtype == np.float32
    assert masks[0, 25:55, 50:70].min() == 1 and masks.sum() == 30 * 20


def _aux_frame(points, w, h):
    """An aux-style frame with one person's body points {index: (x, y)} at confidence 1."""
    body = [0.0] * 54
    for i, (x, y) in points.items():
        body[3 * i:3 * i + 3] = [x, y, 1.0]
    return {"people": [{"pose_keypoints_2d": body}], "canvas_width": w, "canvas_height": h}


def test_fractions_stay_fractions_with_points_below_the_frame():
    """Fractions stay fractions in every frame although one frame has its ankles below the frame (y = 1.1):
    the old per-person guess read that frame as pixels and drew it as a dot in the corner."""
    inside = {1: (0.5, 0.3), 8: (0.45, 0.6), 10: (0.45, 0.95)}
    below = {1: (0.5, 0.35), 8: (0.45, 0.7), 10: (0.45, 1.1)}
    frames = from_pose_keypoint([_aux_frame(inside, 512, 768), _aux_frame(below, 512, 768)])
    np.testing.assert_allclose(frames[1].people[0, 10, :2], (0.45 * 512, 1.1 * 768), rtol=1e-6)
    np.testing.assert_allclose(frames[0].people[0, 1, :2], (0.5 * 512, 0.3 * 768), rtol=1e-6)
    # pixel input with every point inside 0..1 of nothing: a skeleton in pixels is never within 4 px of the corner
    px = from_pose_keypoint([_aux_frame({1: (256.0, 230.0), 8: (3.0, 2.0)}, 512, 768)])
    np.testing.assert_allclose(px[0].people[0, 8, :2], (3.0, 2.0))
    # fractions may reach NORMALISED_LIMIT canvases out; beyond that they are pixels
    far = from_pose_keypoint([_aux_frame({1: (0.5, 0.3), 10: (0.5, 3.9)}, 512, 768)])
    assert far[0].people[0, 10, 1] == pytest.approx(3.9 * 768)


def test_a_list_mixing_fractions_and_pixels_reads_each_frame_in_its_units(caplog):
    """Keypoints joined from two sources: frames 0 and 2 in 0..1 fractions, frame 1 in pixels. Each frame comes
    out in pixels of its canvas, and the log names the frames of each kind."""
    pose = {1: (0.5, 0.3), 8: (0.45, 0.6), 10: (0.45, 0.95)}
    in_pixels = {i: (x * 512, y * 768) for i, (x, y) in pose.items()}
    data = [_aux_frame(pose, 512, 768), _aux_frame(in_pixels, 512, 768), _aux_frame(pose, 512, 768),
            {"people": [], "canvas_width": 512, "canvas_height": 768}]
    with caplog.at_level(logging.WARNING, logger="StableAnimator"):
        frames = from_pose_keypoint(data)
    for f in frames[:3]:
        np.testing.assert_allclose(f.people[0, [1, 8, 10], :2], [in_pixels[1], in_pixels[8], in_pixels[10]], rtol=1e-6)
    assert frames[3].empty
    warnings = [r.getMessage() for r in caplog.records if "mixes units" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "frame(s) 0, 2 hold 0..1 fractions" in warnings[0] and "frame(s) 1 hold pixels" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="StableAnimator"):
        from_pose_keypoint([data[0], data[2]])
        from_pose_keypoint([data[1], data[3]])
    assert not [r for r in caplog.records if "mixes units" in r.getMessage()]   # one kind: no warning


def test_nan_and_infinite_points_are_missing():
    frame = _aux_frame({1: (100.0, 50.0), 2: (120.0, 60.0)}, 640, 480)
    frame["people"][0]["pose_keypoints_2d"][3 * 2:3 * 2 + 2] = [float("nan"), 60.0]
    frame["people"][0]["pose_keypoints_2d"][3 * 3:3 * 3 + 3] = [float("inf"), 1.0, 1.0]
    f = from_pose_keypoint(json.loads(json.dumps([frame])))[0]   # json writes and reads NaN and Infinity
    np.testing.assert_allclose(f.people[0, 1], (100, 50, 1))
    assert (f.people[0, 2] == 0).all() and (f.people[0, 3] == 0).all()
    assert np.isfinite(PoseFrame(64, 64, np.full((1, 134, 3), np.nan)).people).all()


@pytest.mark.parametrize("size", [(float("nan"), 480), (0, 480), ("wide", 480), (None, 480)])
def test_bad_canvas_sizes_are_named(size):
    with pytest.raises(StableAnimatorError, match="canvas size must be whole pixels"):
        from_pose_keypoint([{"people": [], "canvas_width": size[0], "canvas_height": size[1]}])
