"""Bring driving skeletons onto the reference body (DWPose/skeleton_extraction.py:137-178, from MimicMotion).

Official procedure, in the normalised coordinates of its poses:
- keypoints used: body 0, 1, 2, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 (nose, neck, shoulders, hips,
  knees, ankles, eyes, ears; elbows and wrists are left out), restricted to those the reference's first
  person has with score > 0.3 (:143-146);
- driving frames used: those with exactly one person, all their frames pooled (:160-162);
- y: one least-squares line ref_y = ay * drv_y + by over all pooled points (np.polyfit degree 1, :163);
- x: the same scale, corrected for the frame aspect, ax = ay / (fh / fw / H * W), and the mean offset
  bx = mean(ref_x - ax * drv_x) (:164-167);
- every point of every driving frame (body, face, hands) becomes p * (ax, ay) + (bx, by) (:171-175),
  drawn on the reference's canvas.

Here the poses are in canvas pixels, where the same fit reads: one scale s for both axes and offsets
(tx, ty), output on the reference canvas. That is the official result whenever the driving frames have the
reference's size (StableAnimator passes fh = H, fw = W). For frames of another aspect it keeps the body's
proportions as MimicMotion's formula does with the driving size, where StableAnimator's shortcut would
stretch x. Driving points with a score <= 0 (the pose model's "not found" value, or a point aux left
out) are not used in the fit.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import StableAnimatorError
from .pose_format import PoseFrame

log = logging.getLogger("StableAnimator")

ALIGN_IDS = [0, 1, 2, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
REF_THR = 0.3


@dataclass
class Alignment:
    scale: float
    tx: float
    ty: float
    width: int
    height: int

    def apply(self, frame: PoseFrame) -> PoseFrame:
        people = frame.people.copy()
        people[..., 0] = people[..., 0] * self.scale + self.tx
        people[..., 1] = people[..., 1] * self.scale + self.ty
        return PoseFrame(self.width, self.height, people)


def fit_alignment(driving: list[PoseFrame], reference: PoseFrame) -> Alignment:
    if reference.empty:
        raise StableAnimatorError("the reference pose has no person: pose alignment needs the reference "
                                  "image's skeleton. Use a reference photo where the body is visible, or turn alignment off")
    ref = reference.people[0]
    ids = [i for i in ALIGN_IDS if ref[i, 2] > REF_THR]
    if len(ids) < 2:
        raise StableAnimatorError(f"the reference skeleton shows only {len(ids)} of the body points alignment uses "
                                  "(head, shoulders, hips, knees, ankles); use a reference with more of the body visible, or turn alignment off")
    xs_d, ys_d, xs_r, ys_r = [], [], [], []
    single = [f for f in driving if f.people.shape[0] == 1]
    for f in single:
        pts = f.people[0, ids]
        ok = pts[:, 2] > 0
        xs_d.append(pts[ok, 0]); ys_d.append(pts[ok, 1])
        xs_r.append(ref[ids][ok, 0]); ys_r.append(ref[ids][ok, 1])
    if not single or sum(len(a) for a in ys_d) < 2:
        raise StableAnimatorError("no driving frame shows exactly one person with visible body points, so the "
                                  "skeletons cannot be aligned to the reference; check the driving video or turn alignment off")
    xd, yd, xr, yr = (np.concatenate(a).astype(np.float64) for a in (xs_d, ys_d, xs_r, ys_r))
    if np.ptp(yd) < 1e-6:
        raise StableAnimatorError("the driving body points all lie on one horizontal line; alignment needs an upright body")
    s, ty = np.polyfit(yd, yr, 1)
    tx = float(np.mean(xr - s * xd))
    if len(single) < len(driving):
        log.info("StableAnimator pose align: fitted on %d of %d frames (frames with exactly one person)",
                 len(single), len(driving))
    return Alignment(float(s), tx, float(ty), reference.width, reference.height)


def align_poses(driving: list[PoseFrame], reference: PoseFrame) -> list[PoseFrame]:
    """Rescale and shift every driving frame onto the reference skeleton and canvas."""
    a = fit_alignment(driving, reference)
    return [a.apply(f) for f in driving]
