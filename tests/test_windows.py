"""The window/overlap rule (window_problem) against the window schedule itself: a pair passes iff the schedule
covers every frame of every video length. Validation runs before the frame count is known, so passing means
"covers every frame for every frame count"; a pair that leaves a frame out for one length must fail."""
import pytest

from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.sampling.windows import window_indices, window_problem, window_schedule


def covers_every_frame(frames, window, overlap) -> bool:
    """What the schedule as written does for this length: every frame in some window, every window holding
    frame 0, no window longer than `window`. A schedule that cannot be built (stride 0) covers nothing."""
    try:
        windows = window_schedule(frames, window, overlap)
    except (ValueError, IndexError):
        return False
    return (sorted({f for w in windows for f in w}) == list(range(frames))
            and all(w[0] == 0 and len(w) <= max(window, 1) for w in windows))


@pytest.mark.parametrize("window", range(1, 25))
def test_a_pair_passes_iff_every_frame_count_is_covered(window):
    longest = max(64, 4 * window)   # overlap 0 first misses a frame at 2 x window frames
    for overlap in range(-2, window + 2):
        uncovered = [f for f in range(1, longest + 1) if not covers_every_frame(f, window, overlap)]
        problem = window_problem(window, overlap)
        assert (problem is None) == (not uncovered), (window, overlap, problem, uncovered[:5])


def test_overlap_zero_misses_one_frame_per_window():
    # the graphs: window 8 / 24 frames and window 2 / 8 frames leave these frames in no window
    for window, frames, missing in ((8, 24, {8, 16}), (2, 8, {2, 4, 6})):
        covered = {f for w in window_schedule(frames, window, 0) for f in w}
        assert set(range(frames)) - covered == missing
        with pytest.raises(StableAnimatorError, match="overlap \\(0\\) must be at least 1"):
            window_indices(frames, window, 0)
    assert "frames 8, 16, ... lie in no window" in window_problem(8, 0)


def test_largest_overlap_advances_one_frame_per_window():
    assert window_indices(6, 4, 3) == [[0, 1, 2, 3], [0, 2, 3, 4], [0, 3, 4, 5]]
    assert "smaller than window (4)" in window_problem(4, 4)
