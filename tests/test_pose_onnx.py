"""The DWPose path on real onnxruntime sessions of small onnx files with the official signatures."""
import logging

import numpy as np
import onnxruntime as ort
import pytest

from fixtures.pose_models import (brightest_pixel_pose_model, constant_detector, constant_pose_model,
                                  detector_raw, simcc_for_points)
from stableanimator_core.pose.dwpose_detect import letterbox, postprocess
from stableanimator_core.pose.dwpose_estimate import decode_simcc, load_dwpose

CPU = ["CPUExecutionProvider"]


def _sess(path):
    return ort.InferenceSession(str(path), providers=CPU)


def test_fixture_models_have_official_signatures(tmp_path):
    det = _sess(constant_detector(tmp_path / "yolox_l.onnx", np.zeros((8400, 85), np.float32)))
    pose = _sess(brightest_pixel_pose_model(tmp_path / "dw-ll_ucoco_384.onnx"))
    assert [(i.name, i.shape) for i in det.get_inputs()] == [("images", [1, 3, 640, 640])]
    assert [(o.name, o.shape) for o in det.get_outputs()] == [("output", [1, 8400, 85])]
    assert [(i.name, i.shape) for i in pose.get_inputs()] == [("input", [1, 3, 384, 288])]
    assert [(o.name, o.shape) for o in pose.get_outputs()] == [("simcc_x", [1, 133, 576]), ("simcc_y", [1, 133, 768])]


def test_letterbox_pads_grey_top_left():
    img = np.full((100, 200, 3), 7, np.uint8)
    blob, r = letterbox(img)
    assert r == pytest.approx(3.2) and blob.shape == (3, 640, 640) and blob.dtype == np.float32
    assert np.all(blob[:, :320, :] == 7) and np.all(blob[:, 320:, :] == 114)


def test_detector_postprocess_by_hand(tmp_path):
    """Frame 320x240 -> ratio 2. Four candidates: A person 0.9x0.8=0.72; B person overlapping A (IoU>0.45)
    with 0.6x0.8=0.48 (suppressed); C person elsewhere 0.5x0.5=0.25 (kept by NMS, dropped by the 0.3 person
    threshold); D a 'car' (class 2) 0.9x0.9 (not a person)."""
    dets = [
        (8, 20, 15, (164.0, 124.0, 80.0, 200.0), 0.9, {0: 0.8}),   # A: xyxy /2 = (62, 12, 102, 112)
        (8, 21, 15, (168.0, 124.0, 80.0, 200.0), 0.6, {0: 0.8}),   # B: shifted 4 px, IoU ~0.9
        (32, 15, 3, (500.0, 110.0, 64.0, 128.0), 0.5, {0: 0.5}),  # C
        (16, 5, 5, (90.0, 90.0, 32.0, 32.0), 0.9, {2: 0.9}),       # D
    ]
    raw = detector_raw(dets)
    # hand check of the grid/stride decode of A: cell (20,15) of stride 8 -> (20+0.5)*8 = 164
    assert raw[20 + 15 * 80, 0] == pytest.approx(0.5) and raw[20 + 15 * 80, 2] == pytest.approx(np.log(10))
    sess = _sess(constant_detector(tmp_path / "yolox_l.onnx", raw))
    img = np.zeros((240, 320, 3), np.uint8)
    blob, ratio = letterbox(img)
    out = sess.run(None, {"images": blob[None]})[0]
    boxes, scores = postprocess(out[0], ratio)
    np.testing.assert_allclose(boxes, [[62, 12, 102, 112]], atol=1e-3)
    np.testing.assert_allclose(scores, [0.72], atol=1e-5)
    # with a lower person threshold C survives NMS too, and B is still suppressed
    boxes2, scores2 = postprocess(out[0], ratio, person_thr=0.2)
    np.testing.assert_allclose(boxes2, [[62, 12, 102, 112], [234, 23, 266, 87]], atol=1e-3)


def test_simcc_decode_by_hand():
    sx = np.zeros((3, 576), np.float32)
    sy = np.zeros((3, 768), np.float32)
    sx[0, 101], sy[0, 300] = 0.9, 0.7      # -> (50.5, 150), score min(0.9, 0.7)
    sx[1, 0], sy[1, 767] = 0.4, 0.5        # -> (0, 383.5), score 0.4
    sx[2] -= 1.0; sy[2] -= 2.0             # maxima <= 0 -> location -1 / 2
    locs, scores = decode_simcc(sx, sy)
    np.testing.assert_allclose(locs, [[50.5, 150.0], [0.0, 383.5], [-0.5, -0.5]])
    np.testing.assert_allclose(scores, [0.7, 0.4, -2.0])  # min of the two maxima


def _one_box_detector(tmp_path, box_xyxy, frame_wh):
    r = min(640 / frame_wh[1], 640 / frame_wh[0])
    x0, y0, x1, y1 = [v * r for v in box_xyxy]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    raw = detector_raw([(16, int(cx // 16), int(cy // 16), (cx, cy, x1 - x0, y1 - y0), 0.95, {0: 0.95})])
    return constant_detector(tmp_path / "yolox_l.onnx", raw)


def test_pose_decode_to_image_by_hand(tmp_path):
    """Box (100,50)-(180,200): centre (140,125); size x1.25 = (100, 187.5), widened to aspect 0.75 ->
    (140.625, 187.5). A model-input point p maps back to p / (288,384) * size + centre - size/2."""
    det = _one_box_detector(tmp_path, (100, 50, 180, 200), (320, 240))
    pts = np.zeros((133, 2), np.float32)
    pts[:, 0] = np.arange(133) * 2.0 + 0.5
    pts[:, 1] = 383.5 - np.arange(133) * 2.5
    peaks = np.linspace(0.2, 0.95, 133).astype(np.float32)
    sx, sy = simcc_for_points(pts, peak=peaks)
    pose = constant_pose_model(tmp_path / "dw-ll_ucoco_384.onnx", sx, sy)
    model = load_dwpose(str(det), str(pose), CPU)
    people = model(np.zeros((240, 320, 3), np.uint8))
    assert people.shape == (1, 134, 3)
    size = np.array([140.625, 187.5])
    expect = pts / np.array([288, 384]) * size + np.array([140, 125]) - size / 2
    # COCO-WholeBody -> DWPose/OpenPose layout: insert the neck at 17, reorder the body
    coco = np.concatenate([expect, peaks[:, None]], 1)
    neck = np.r_[(coco[5, :2] + coco[6, :2]) / 2, float(coco[5, 2] > 0.3 and coco[6, 2] > 0.3)]
    full = np.insert(coco, 17, neck, axis=0)
    op = full.copy()
    op[[1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]] = full[[17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]]
    np.testing.assert_allclose(people[0], op, atol=1e-3)
    # spot checks by name: OpenPose 1 is the neck, 2 the right shoulder (COCO 6), 5 the left (COCO 5)
    np.testing.assert_allclose(people[0, 2, :2], expect[6], atol=1e-3)
    np.testing.assert_allclose(people[0, 5, :2], expect[5], atol=1e-3)
    np.testing.assert_allclose(people[0, 24:, :2], expect[23:], atol=1e-3)  # feet, face, hands keep order


@pytest.mark.parametrize("frame_wh,box,dot", [((320, 240), (100, 50, 180, 200), (140, 100)),
                                              ((180, 400), (20, 40, 160, 380), (61, 333)),
                                              ((1024, 576), (300, 80, 700, 560), (555, 222))])
def test_crop_warp_round_trip_through_onnxruntime(tmp_path, frame_wh, box, dot):
    """A white dot painted in the frame comes back at its place: detector box -> affine warp -> (a model
    whose SimCC peaks on the brightest crop pixel) -> decode -> back to the frame."""
    det = _one_box_detector(tmp_path, box, frame_wh)
    pose = brightest_pixel_pose_model(tmp_path / "dw-ll_ucoco_384.onnx")
    model = load_dwpose(str(det), str(pose), CPU)
    crop_px = max((box[2] - box[0]) * 1.25, (box[3] - box[1]) * 1.25 * 0.75) / 288  # frame px per crop px
    # a smooth blob (wider than a crop pixel) so that the downscaling warp cannot step over it
    yy, xx = np.mgrid[:frame_wh[1], :frame_wh[0]]
    sigma = max(1.0, 2 * crop_px)
    blob = np.exp(-((xx - dot[0]) ** 2 + (yy - dot[1]) ** 2) / (2 * sigma ** 2))
    img = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    people = model(img)
    assert people.shape == (1, 134, 3)
    pts = np.delete(people[0], 1, axis=0)  # the neck is a mean of two equal points anyway
    tol = 0.5 + crop_px / 2 + 0.01  # half a SimCC bin (0.5 crop px) in frame pixels, plus rounding of the peak
    assert np.abs(pts[:, 0] - dot[0]).max() <= tol
    assert np.abs(pts[:, 1] - dot[1]).max() <= tol


def test_no_person_gives_empty_skeleton_and_warning(tmp_path, caplog):
    raw = detector_raw([(8, 3, 3, (28.0, 28.0, 16.0, 16.0), 0.2, {0: 0.2})])  # 0.04 < 0.1
    det = constant_detector(tmp_path / "yolox_l.onnx", raw)
    pose = brightest_pixel_pose_model(tmp_path / "dw-ll_ucoco_384.onnx")
    model = load_dwpose(str(det), str(pose), CPU)
    with caplog.at_level(logging.WARNING, logger="StableAnimator"):
        people = model(np.zeros((64, 48, 3), np.uint8), frame_index=7)
    assert people.shape == (0, 134, 3)
    assert any("no person" in r.message and "frame 7" in r.message for r in caplog.records)


def test_wrong_onnx_file_is_a_clear_error(tmp_path):
    from stableanimator_core.errors import StableAnimatorError
    bad = tmp_path / "yolox_l.onnx"
    bad.write_bytes(b"not an onnx file")
    pose = brightest_pixel_pose_model(tmp_path / "dw-ll_ucoco_384.onnx")
    with pytest.raises(StableAnimatorError, match="yolox_l.onnx"):
        load_dwpose(str(bad), str(pose), CPU)
