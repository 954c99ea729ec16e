"""The pose nodes inside a real ComfyUI: LoadImage -> DWPose loader -> extract -> align -> render -> SaveImage,
and face boxes -> MaskToImage -> SaveImage, on small onnx files with the official signatures."""
import numpy as np
import pytest
from PIL import Image

from fixtures.pose_models import constant_detector, constant_pose_model, detector_raw, simcc_for_points

DET, POSE = "yolox_l.onnx", "dw-ll_ucoco_384.onnx"


def _crop_skeleton():
    """A plausible standing person in the 288x384 model input (COCO-WholeBody order), scores 0.9."""
    pts = np.zeros((133, 2), np.float32)
    coco17 = [(144, 60), (150, 52), (138, 52), (158, 56), (130, 56), (176, 100), (112, 100), (188, 150),
              (100, 150), (192, 196), (96, 196), (166, 200), (122, 200), (168, 270), (120, 270), (170, 340), (118, 340)]
    pts[:17] = coco17
    pts[17:23] = [(170, 350), (176, 352), (165, 350), (118, 350), (112, 352), (123, 350)]  # feet
    t = np.linspace(0, np.pi, 68)
    pts[23:91] = np.stack([144 + 14 * np.cos(t), 64 + 12 * np.sin(t)], 1)                  # face
    pts[91:112] = np.stack([192 + np.arange(21) % 5, 200 + np.arange(21) // 5 * 2], 1)     # left hand
    pts[112:133] = np.stack([96 - np.arange(21) % 5, 200 + np.arange(21) // 5 * 2], 1)     # right hand
    return pts


def _write_models(folder):
    folder.mkdir(parents=True, exist_ok=True)
    # one person box in the 640x640 letterboxed input: (160, 40)-(480, 600)
    raw = detector_raw([(16, 20, 20, (320.0, 320.0, 320.0, 560.0), 0.95, {0: 0.95})])
    constant_detector(folder / DET, raw)
    sx, sy = simcc_for_points(_crop_skeleton(), peak=0.9)
    constant_pose_model(folder / POSE, sx, sy)


def _save(host, prefix):
    files = sorted(host.output_dir.glob(f"{prefix}_*.png"))
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


@pytest.mark.host
def test_pose_chain_in_host(comfy_host):
    _write_models(comfy_host.models_dir / "dwpose")
    Image.fromarray(np.full((1024, 576, 3), 90, np.uint8)).save(comfy_host.input_dir / "pose_ref.png")
    Image.fromarray(np.full((720, 1280, 3), 30, np.uint8)).save(comfy_host.input_dir / "pose_drv.png")
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "pose_ref.png"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "pose_drv.png"}},
        "3": {"class_type": "RepeatImageBatch", "inputs": {"image": ["2", 0], "amount": 3}},
        "4": {"class_type": "StableAnimatorDWPoseLoader", "inputs": {"detector": DET, "pose_model": POSE, "device": "auto"}},
        "5": {"class_type": "StableAnimatorPoseExtract", "inputs": {"dwpose": ["4", 0], "images": ["1", 0]}},
        "6": {"class_type": "StableAnimatorPoseExtract", "inputs": {"dwpose": ["4", 0], "images": ["3", 0]}},
        "7": {"class_type": "StableAnimatorPoseAlign", "inputs": {"driving": ["6", 0], "reference": ["5", 0], "align": True}},
        "8": {"class_type": "StableAnimatorPoseRender", "inputs": {"pose_keypoint": ["7", 0], "width": 576, "height": 1024,
                                                                   "body": True, "hands": True, "face": True}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "sa_pose_aligned"}},
        "10": {"class_type": "StableAnimatorPoseRender", "inputs": {"pose_keypoint": ["5", 0], "width": 0, "height": 0,
                                                                    "body": True, "hands": True, "face": True}},
        "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "sa_pose_ref"}},
        "12": {"class_type": "StableAnimatorFaceBoxes", "inputs": {"pose_keypoint": ["7", 0], "width": 576, "height": 1024,
                                                                   "expand": 1.0, "min_score": 0.3}},
        "13": {"class_type": "MaskToImage", "inputs": {"mask": ["12", 0]}},
        "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "sa_pose_face"}},
    }
    comfy_host.run(prompt, timeout=300)
    aligned, ref, face = _save(comfy_host, "sa_pose_aligned"), _save(comfy_host, "sa_pose_ref"), _save(comfy_host, "sa_pose_face")
    assert len(aligned) == 3 and len(ref) == 1 and len(face) == 3
    assert aligned[0].shape == (1024, 576, 3) and ref[0].shape == (1024, 576, 3)
    # the driving skeleton (another frame size, another place) was brought onto the reference: same picture
    # (up to sub-pixel rounding, which moves 1-pixel sticks: compare 8x8 block means)
    def blocks(img):
        return img.astype(float).reshape(128, 8, 72, 8, 3).mean((1, 3))
    for a in aligned:
        assert np.abs(blocks(a) - blocks(ref[0])).max() < 25
        assert np.abs(a.astype(float) - ref[0]).mean() < 0.5
    assert ref[0].max() > 100 and (ref[0].sum(-1) > 0).mean() < 0.05  # a thin skeleton on black
    # face box: the 68 face points of the reference, in pixels of the 576x1024 output
    mask = face[0][..., 0] > 127
    ys, xs = np.nonzero(mask)
    assert 0 < mask.mean() < 0.05
    assert (xs.max() - xs.min()) > (ys.max() - ys.min())  # the half-ellipse face is wider than tall


def test_missing_dwpose_file_names_folder_and_files(pack, tmp_path):
    import folder_paths

    from stableanimator_core.errors import StableAnimatorError as CoreError

    loader = pack.nodes.pose.StableAnimatorDWPoseLoader
    saved = folder_paths.folder_names_and_paths["dwpose"]
    folder_paths.folder_names_and_paths["dwpose"] = ([str(tmp_path)], saved[1])
    try:
        with pytest.raises(Exception) as e:
            loader.execute(detector=DET, pose_model=POSE, device="cpu")
    finally:
        folder_paths.folder_names_and_paths["dwpose"] = saved
    assert type(e.value).__name__ == CoreError.__name__
    msg = str(e.value)
    assert str(tmp_path) in msg and DET in msg and POSE in msg


def test_extract_node_in_process_warns_on_empty_frames(pack, tmp_path, caplog):
    """Pose Extract with interruption checks and a progress bar, on frames where nobody is found."""
    import logging

    import torch

    folder = tmp_path / "dwpose"
    folder.mkdir()
    constant_detector(folder / DET, np.zeros((8400, 85), np.float32))
    sx, sy = simcc_for_points(_crop_skeleton(), peak=0.9)
    constant_pose_model(folder / POSE, sx, sy)
    model = pack.stableanimator_core.pose.dwpose_estimate.load_dwpose(str(folder / DET), str(folder / POSE), ["CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger="StableAnimator"):
        out = pack.nodes.pose.StableAnimatorPoseExtract.execute(dwpose=model, images=torch.rand(3, 48, 80, 3))
    kps = out.result[0]
    assert len(kps) == 3 and all(f["people"] == [] and f["canvas_width"] == 80 and f["canvas_height"] == 48 for f in kps)
    assert sum("no person" in r.message for r in caplog.records) == 3
