"""Alignment of driving skeletons onto the reference, as DWPose/skeleton_extraction.py:137-178 does."""
import numpy as np
import pytest

from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.pose.pose_align import ALIGN_IDS, align_poses, fit_alignment
from stableanimator_core.pose.pose_format import PoseFrame


def _person(rng, w, h):
    p = np.zeros((134, 3), np.float32)
    p[:, 0] = rng.uniform(0.3, 0.7, 134) * w
    p[:, 1] = rng.uniform(0.1, 0.9, 134) * h
    p[:, 2] = rng.uniform(0.5, 1.0, 134)
    return p


@pytest.mark.parametrize("ref_wh,drv_wh", [((512, 512), (512, 512)), ((576, 1024), (576, 1024)),
                                           ((576, 1024), (1280, 720))])
def test_scaled_and_shifted_driving_comes_back_onto_reference(ref_wh, drv_wh):
    rng = np.random.default_rng(0)
    ref = _person(rng, *ref_wh)
    s, tx, ty = 0.62, 37.5, -12.25
    frames = []
    for k in range(5):
        # driving person = reference moved by a known similarity, with small per-frame motion of the arms
        d = ref.copy()
        d[:, :2] = (ref[:, :2] - (tx, ty)) / s
        d[[3, 4, 6, 7], :2] += rng.normal(0, 5, (4, 2))   # elbows/wrists are not in the fit
        frames.append(PoseFrame(*drv_wh, d[None]))
    out = align_poses(frames, PoseFrame(*ref_wh, ref[None]))
    a = fit_alignment(frames, PoseFrame(*ref_wh, ref[None]))
    assert a.scale == pytest.approx(s, rel=1e-4) and a.tx == pytest.approx(tx, abs=0.05) and a.ty == pytest.approx(ty, abs=0.05)
    for f in out:
        assert (f.width, f.height) == ref_wh
        keep = [i for i in range(134) if i not in (3, 4, 6, 7)]
        assert np.abs(f.people[0, keep, :2] - ref[keep, :2]).max() < 1.0
        np.testing.assert_array_equal(f.people[0, :, 2], frames[0].people[0, :, 2])  # scores untouched


def test_fit_uses_official_points_and_single_person_frames_only():
    rng = np.random.default_rng(1)
    ref = _person(rng, 512, 512)
    ref[ALIGN_IDS[3], 2] = 0.1          # a reference point below 0.3 is left out of the fit
    d = ref.copy()
    d[:, :2] = ref[:, :2] * 0.5 + 10
    d[ALIGN_IDS[3], :2] = (-500, 900)   # ...so its wild driving position does not matter
    two = PoseFrame(512, 512, np.stack([ref * 3, ref * 3]))  # two people: not used for the fit
    empty = PoseFrame(512, 512)
    a = fit_alignment([PoseFrame(512, 512, d[None]), two, empty], PoseFrame(512, 512, ref[None]))
    assert a.scale == pytest.approx(2.0, rel=1e-5) and a.tx == pytest.approx(-20, abs=1e-3)
    out = align_poses([PoseFrame(512, 512, d[None]), empty], PoseFrame(512, 512, ref[None]))
    assert out[1].empty


def test_alignment_errors_are_clear():
    rng = np.random.default_rng(2)
    ref = _person(rng, 512, 512)
    with pytest.raises(StableAnimatorError, match="reference pose has no person"):
        align_poses([PoseFrame(512, 512, ref[None])], PoseFrame(512, 512))
    with pytest.raises(StableAnimatorError, match="exactly one person"):
        align_poses([PoseFrame(512, 512)], PoseFrame(512, 512, ref[None]))
