"""A photo of any shape brought to the video size: stretch (official), crop (centre, aspect kept) and pad (black
bars, aspect kept), in stableanimator_core.image_ops and through the Resize Images node."""
import numpy as np
import pytest
import torch

from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.image_ops import fit_plan, resize_fit


def disc_photo(w=400, h=500):
    """A 4:5 portrait: grey, with a white disc (a round 'face') of radius 100 at the centre."""
    yy, xx = np.mgrid[:h, :w]
    img = np.full((h, w, 3), 0.5, np.float32)
    img[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 < 100 ** 2] = 1.0
    return torch.from_numpy(img)[None]


def disc_extent(img):
    """Width and height in pixels of the white disc."""
    white = img[0, ..., 0].numpy() > 0.75
    rows, cols = np.nonzero(white.any(1))[0], np.nonzero(white.any(0))[0]
    return cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1


def test_fit_plan_numbers():
    assert fit_plan(1080, 1350, 576, 1024, "stretch") == (576, 1024, 0, 0)
    assert fit_plan(1080, 1350, 576, 1024, "crop") == (819, 1024, 121, 0)     # cover: height fits, sides cut
    assert fit_plan(1080, 1350, 576, 1024, "pad") == (576, 720, 0, 152)       # inside: bars above and below
    with pytest.raises(StableAnimatorError, match="fit 'zoom'"):
        fit_plan(10, 10, 64, 64, "zoom")


@pytest.mark.parametrize("method", ["lanczos", "bicubic"])
def test_crop_and_pad_keep_a_round_face_round_stretch_squeezes_it(method):
    photo = disc_photo()                                 # 4:5
    for fit in ("crop", "pad"):
        out = resize_fit(photo, 192, 320, fit, method)   # 9:16
        assert out.shape == (1, 320, 192, 3)
        w, h = disc_extent(out)
        assert abs(w - h) <= 2, (fit, w, h)
    w, h = disc_extent(resize_fit(photo, 192, 320, "stretch", method))
    assert h > 1.3 * w                                   # squeezed: 4:5 stretched into 9:16


def test_pad_bars_are_black_and_crop_cuts_the_sides():
    photo = disc_photo()
    pad = resize_fit(photo, 320, 192, "pad")             # landscape from portrait: bars left and right
    sw, sh, x, y = fit_plan(400, 500, 320, 192, "pad")
    assert (sw, sh, y) == (154, 192, 0) and x == 83
    assert pad[:, :, :x].abs().max() == 0 and pad[:, :, x + sw:].abs().max() == 0
    assert pad[:, :, x + 2:x + sw - 2].min() > 0.4
    crop = resize_fit(photo, 320, 192, "crop")
    assert crop.min() > 0.4                              # no bars; the picture fills the frame


def test_resize_images_node_fit_is_last_optional_and_stretch_by_default(pack):
    node = pack.nodes.images.StableAnimatorResizeImage
    inputs = node.define_schema().inputs
    assert [i.id for i in inputs] == ["images", "width", "height", "method", "fit"]   # saved widget order kept
    photo = disc_photo()
    old = node.execute(images=photo, width=192, height=320, method="lanczos (official)")   # an old prompt
    assert torch.equal(old[0], resize_fit(photo, 192, 320, "stretch", "lanczos"))
    crop = node.execute(images=photo, width=192, height=320, method="bicubic", fit="crop")
    assert torch.equal(crop[0], resize_fit(photo, 192, 320, "crop", "bicubic"))
    assert list(crop[1:]) == [192, 320]
