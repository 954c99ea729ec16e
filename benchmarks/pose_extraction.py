"""Per-frame DWPose extraction time on this machine, with random-weight onnx nets of the real models' compute
(YOLOX-L at 640x640 and the 384x288 whole-body model). A benchmark, not a test: it prints figures.

    .host/venv/bin/python benchmarks/pose_extraction.py
"""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fixtures.pose_models import flops_detector, flops_pose  # noqa: E402
from stableanimator_core.pose.dwpose_detect import letterbox  # noqa: E402
from stableanimator_core.pose.dwpose_estimate import WholeBodyEstimator  # noqa: E402


def best_of(fn, runs=3):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        det_macs = flops_detector(tmp / "yolox_l.onnx")
        pose_macs = flops_pose(tmp / "dw-ll_ucoco_384.onnx")
        det = ort.InferenceSession(str(tmp / "yolox_l.onnx"), providers=["CPUExecutionProvider"])
        pose = WholeBodyEstimator(ort.InferenceSession(str(tmp / "dw-ll_ucoco_384.onnx"), providers=["CPUExecutionProvider"]))
        frame = np.random.default_rng(0).integers(0, 255, (1024, 576, 3), dtype=np.uint8)
        box = np.array([[100, 100, 476, 900]], np.float32)
        t_det = best_of(lambda: det.run(None, {"images": letterbox(frame)[0][None]}))
        t_pose = best_of(lambda: pose(frame, box))
    print(f"detector net {det_macs / 1e9:.1f} GMACs: {t_det * 1000:.0f} ms")
    print(f"pose net {pose_macs / 1e9:.2f} GMACs (one person): {t_pose * 1000:.0f} ms")
    print(f"per frame with one person: {(t_det + t_pose) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
