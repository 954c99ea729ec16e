"""The face nodes in the real ComfyUI host: LoadImage -> Face Analysis Loader -> Face Embed -> Identity
Similarity, on antelopev2 stand-ins placed in the host's models/insightface/models/antelopev2."""
import pytest
from PIL import Image

from comfy_host import PromptError
from fixtures.face_models import paint_face, textured_image, tiny_iresnet, write_antelopev2
from stableanimator_core.face.face_analysis import FaceAnalyzer
from stableanimator_core.face.similarity import cosine_similarity

pytestmark = [pytest.mark.host, pytest.mark.filterwarnings("ignore::FutureWarning")]


def prompt(ref_name, frame_name, on_missing="error"):
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": ref_name}},
        "2": {"class_type": "LoadImage", "inputs": {"image": frame_name}},
        "3": {"class_type": "StableAnimatorFaceAnalysisLoader", "inputs": {"provider": "auto", "det_size": 640}},
        "4": {"class_type": "StableAnimatorFaceEmbed", "inputs": {"face_analysis": ["3", 0], "images": ["1", 0],
                                                                  "channel_order": "BGR (training)", "on_missing": "error"}},
        "5": {"class_type": "StableAnimatorFaceEmbed", "inputs": {"face_analysis": ["3", 0], "images": ["2", 0],
                                                                  "channel_order": "BGR (training)", "on_missing": on_missing}},
        "6": {"class_type": "StableAnimatorIdentitySimilarity", "inputs": {"reference": ["4", 0], "frames": ["5", 0]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 3]}},
        "8": {"class_type": "MaskToImage", "inputs": {"mask": ["5", 1]}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
    }


@pytest.fixture(scope="module")
def insightface_root(comfy_host):
    root = comfy_host.models_dir / "insightface"
    write_antelopev2(root, tiny_iresnet(seed=21))
    return root


def save(host, name, rgb):
    Image.fromarray(rgb).save(host.input_dir / name)
    return name


def test_embed_and_similarity_run_in_the_host(comfy_host, insightface_root):
    ref = paint_face(textured_image(30), "red", 10, 8)
    frame = paint_face(textured_image(31), "red", 6, 5)
    ref_name, frame_name = save(comfy_host, "face_ref.png", ref), save(comfy_host, "face_frame.png", frame)

    outputs = comfy_host.run(prompt(ref_name, ref_name))
    text = outputs["6"]["text"][0]
    assert text.startswith("CSIM mean 1.0000, min 1.0000 over 1 of 1 frames"), text
    assert outputs["7"]["images"] and outputs["9"]["images"]

    outputs = comfy_host.run(prompt(ref_name, frame_name))
    host_value = float(outputs["6"]["text"][0].splitlines()[1])
    local = FaceAnalyzer(str(insightface_root), providers=["CPUExecutionProvider"])
    want = cosine_similarity(local.embed(ref[None]).embedding[0], local.embed(frame[None]).embedding)
    assert host_value == pytest.approx(float(want[0]), abs=1e-4)


def test_no_face_is_a_clear_error_in_the_host(comfy_host, insightface_root):
    ref_name = save(comfy_host, "face_ref2.png", paint_face(textured_image(32), "red", 10, 8))
    blank_name = save(comfy_host, "face_blank.png", textured_image(33))
    with pytest.raises(PromptError, match="No face was found"):
        comfy_host.run(prompt(ref_name, blank_name))
    with pytest.raises(PromptError, match="no face was found in any of the 1 frames"):
        comfy_host.run(prompt(ref_name, blank_name, on_missing="zero embedding (official)"))
