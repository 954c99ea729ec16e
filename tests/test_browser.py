"""The shipped workflows in ComfyUI's real frontend: the frontend package the test host serves, in Debian's
Chromium driven by Playwright (scripts/frontend.py; scripts/setup_host.sh WITH_BROWSER=1 installs both).

Each workflow is opened by drag-and-drop and by Workflow > Open, and what the frontend then holds is checked
against the file: no alert, no console error, no dialog, every node known, every widget value where the file put
it and inside its node, no node over another node or a group title, notes whose text fits. The template browser
lists each workflow once with its thumbnail and opens it; the Missing Models dialog offers the SVD download. Each
workflow then runs from the Run button at toy size on the small official-format weights
(tests/fixtures/e2e_models.py), and its saved video is read back. Screenshots go to test-artifacts/browser/
(gitignored).
"""
import json
import time
from pathlib import Path

import numpy as np
import pytest

from comfy_host import install_example_inputs
from fixtures import e2e_models as e2e
from frontend import Frontend

pytestmark = [pytest.mark.host, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::FutureWarning")]
REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
ARTIFACTS = REPO / "test-artifacts" / "browser"
PACK_FOLDER = "ComfyUI-StableAnimator"   # the link scripts/setup_host.sh puts in custom_nodes/
FACE_REFERENCE = "e2e_face_reference.png"   # a photo the stand-in face detector finds a face in
TOY = 64


def offline_noise(event) -> bool:
    """The frontend asks api.comfy.org about custom nodes; the test machine is offline, so the page's security
    policy blocks it and logs that. A user's machine answers it."""
    kind, text = event
    return kind == "console" and "api.comfy.org" in text and "Content Security Policy" in text


def problems(fe: Frontend) -> list:
    return [e for e in fe.take_events() if not offline_noise(e)]


@pytest.fixture(scope="module")
def host(comfy_host, request):
    e2e.prepare_host(comfy_host, request)
    # Earlier tests in the session queue prompts with NaN numbers on purpose (test_bad_inputs). ComfyUI 0.3.75
    # serves them back from /history as bare NaN, which the frontend's JSON.parse rejects with a console error
    # that is not this pack's; the browser tests start from the empty history a user's fresh host has.
    status, _ = comfy_host.post("/history", {"clear": True})
    assert status == 200, status
    install_example_inputs(comfy_host.input_dir)
    from PIL import Image
    Image.fromarray(e2e.reference_rgb()).save(comfy_host.input_dir / FACE_REFERENCE)
    return comfy_host


@pytest.fixture(scope="module")
def frontend(host, tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with Frontend(host.url, tmp_path_factory.mktemp("chromium")) as fe:
        fe.settle(1.5)
        # What the frontend logs on its own first start (no user.css, no saved workflows) is not ours to fix,
        # but nothing of it may come from this pack.
        start = fe.take_events()
        assert not [e for e in start if "stableanimator" in e[1].lower()], start
        yield fe


def load_file(path: Path) -> dict:
    return json.loads(path.read_text())


def open_by(fe: Frontend, path: Path, how: str) -> dict:
    wf = load_file(path)
    assert not fe.visible_dialogs(), f"a dialog was left open: {fe.visible_dialogs()}"
    fe.take_events()
    if how == "drop":
        fe.drop_workflow(path)
    else:
        fe.open_workflow(path)
    fe.wait_loaded(len(wf["nodes"]))
    fe.page.wait_for_function(f"app.graph.id === {json.dumps(wf['id'])}", timeout=10_000)
    fe.settle(1.5)   # dialogs, image previews
    return wf


# -------------------------------------------------------------------------------------------------------------
# Geometry of what the frontend drew

def rect_of(node: dict) -> tuple:
    """A node as drawn: its badges and title bar above pos, its body below."""
    (x, y), (w, h) = node["pos"], node["size"]
    top = y - node["title_height"] - node["badge_height"]
    return x, top, x + w, y + h


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(a, b) -> bool:
    return b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


def serialized_widgets(node: dict) -> list:
    # widgets_values holds every serialised widget, control_after_generate included
    return [w for w in node["widgets"] if w["serialize"]]


def check_layout(report: dict, wf: dict) -> list[str]:
    errors = []
    nodes = report["nodes"]
    by_id = {n["id"]: n for n in nodes}
    for n in nodes:
        name = f"{n['type']} #{n['id']} '{n['title']}'"
        if n["computed"][0] > n["size"][0] + 0.5 or n["computed"][1] > n["size"][1] + 0.5:
            errors.append(f"{name}: the frontend needs {n['computed']} but the file gives {n['size']}")
        previous_bottom = None
        for w in n["widgets"]:
            if w["y"] is None:
                continue
            bottom = w["y"] + w["height"]
            if w["y"] < 0 or bottom > n["size"][1] + 0.5:
                errors.append(f"{name}: widget '{w['name']}' at y {w['y']}..{bottom} lies outside the node's body "
                              f"(height {n['size'][1]})")
            if previous_bottom is not None and w["y"] < previous_bottom - 0.5:
                errors.append(f"{name}: widget '{w['name']}' overlaps the widget above it")
            previous_bottom = bottom
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            if overlaps(rect_of(a), rect_of(b)):
                errors.append(f"nodes overlap: {a['title']} #{a['id']} {rect_of(a)} and {b['title']} #{b['id']} {rect_of(b)}")
    groups = report["groups"]
    for g in groups:
        x, y, w, h = g["bounding"]
        title_bar = (x, y, x + w, y + g["title_height"])
        for n in nodes:
            if overlaps(title_bar, rect_of(n)):
                errors.append(f"group title '{g['title']}' is covered by {n['title']} #{n['id']}")
    for n in nodes:
        homes = [g["title"] for g in groups if inside(rect_of(n), (g["bounding"][0], g["bounding"][1],
                                                                  g["bounding"][0] + g["bounding"][2],
                                                                  g["bounding"][1] + g["bounding"][3]))]
        if len(homes) != 1:
            errors.append(f"{n['title']} #{n['id']} lies inside {len(homes)} groups {homes}, not one")
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            ra = (a["bounding"][0], a["bounding"][1], a["bounding"][0] + a["bounding"][2], a["bounding"][1] + a["bounding"][3])
            rb = (b["bounding"][0], b["bounding"][1], b["bounding"][0] + b["bounding"][2], b["bounding"][1] + b["bounding"][3])
            if overlaps(ra, rb):
                errors.append(f"groups overlap: {a['title']} and {b['title']}")
    assert by_id   # a report without nodes would pass every check above
    return errors


def check_against_file(report: dict, wf: dict) -> list[str]:
    errors = []
    live = {n["id"]: n for n in report["nodes"]}
    if sorted(live) != sorted(n["id"] for n in wf["nodes"]):
        return [f"node ids differ: file {sorted(n['id'] for n in wf['nodes'])}, frontend {sorted(live)}"]
    for node in wf["nodes"]:
        n = live[node["id"]]
        name = f"{node['type']} #{node['id']}"
        if n["type"] != node["type"] or not n["registered"]:
            errors.append(f"{name}: missing node type (frontend has {n['type']}, registered={n['registered']})")
        if n["has_errors"]:
            errors.append(f"{name}: the frontend marks it as broken")
        if [round(v, 3) for v in n["size"]] != [round(v, 3) for v in node["size"]]:
            errors.append(f"{name}: the frontend resized it from {node['size']} to {n['size']}")
        values = node.get("widgets_values") or []
        widgets = serialized_widgets(n)
        if len(widgets) != len(values):
            errors.append(f"{name}: {len(values)} widget values in the file for {len(widgets)} widgets "
                          f"{[w['name'] for w in widgets]}")
            continue
        for w, v in zip(widgets, values):
            if isinstance(v, (dict, list)) or w["value"] is None:
                continue
            if w["value"] != v:
                errors.append(f"{name}: widget '{w['name']}' shows {w['value']!r}, the file says {v!r} (shifted?)")
            if w["values"] and w["value"] not in w["values"] and w["name"] not in ("image",):
                errors.append(f"{name}: '{w['name']}' = {w['value']!r} is not one of its options {w['values']}")
            if isinstance(w["value"], (int, float)) and not isinstance(w["value"], bool):
                if (w["min"] is not None and w["value"] < w["min"]) or (w["max"] is not None and w["value"] > w["max"]):
                    errors.append(f"{name}: '{w['name']}' = {w['value']} is outside {w['min']}..{w['max']}")
    if report["scale"] != wf["extra"]["ds"]["scale"]:
        errors.append(f"the stored zoom {wf['extra']['ds']['scale']} was not restored ({report['scale']})")
    return errors


# -------------------------------------------------------------------------------------------------------------
# Opening

@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_opens_by_drag_and_drop(frontend, path):
    wf = open_by(frontend, path, "drop")
    report = frontend.graph_report()
    frontend.screenshot(ARTIFACTS / f"{path.stem}_opened.png")
    assert not problems(frontend), problems(frontend)
    assert not frontend.visible_dialogs(), frontend.visible_dialogs()
    errors = check_against_file(report, wf) + check_layout(report, wf)
    assert not errors, "\n".join(errors)
    assert report["scale"] >= 1.0, "stored zoom below 100%: widget and note text too small to read"
    # the first group's title is on screen at the stored view, clear of the sidebar and the floating menus
    first = min(report["groups"], key=lambda g: (g["bounding"][0], g["bounding"][1]))
    sx = (first["bounding"][0] + report["offset"][0]) * report["scale"]
    sy = (first["bounding"][1] + report["offset"][1]) * report["scale"]
    assert 60 <= sx <= 400 and 80 <= sy <= 300, (first["title"], sx, sy)
    for n in report["nodes"]:
        if n["type"] in ("MarkdownNote", "Note"):
            fit = frontend.note_overflow(n["id"])
            assert fit["visible"] and fit["scroll"] <= fit["client"] + 1, f"note '{n['title']}' hides text: {fit}"
    assert not problems(frontend)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_opens_by_workflow_open(frontend, path):
    wf = open_by(frontend, path, "open")
    report = frontend.graph_report()
    assert not problems(frontend), problems(frontend)
    assert not frontend.visible_dialogs(), frontend.visible_dialogs()
    errors = check_against_file(report, wf)
    assert not errors, "\n".join(errors)
    assert report["links"] == len(wf["links"])


def test_a_null_id_loads_nothing(frontend, tmp_path):
    """The loading checks can fail: a copy of a workflow with a null id (what the files had before) changes
    nothing in the frontend, so waiting for its graph would time out."""
    wf = load_file(REPO / "workflows" / "stableanimator_basic.json")
    wf["id"] = None
    bad = tmp_path / "null_id.json"
    bad.write_text(json.dumps(wf))
    before = frontend.page.evaluate("app.graph.id")
    frontend.drop_workflow(bad)
    frontend.settle(2)
    assert frontend.page.evaluate("app.graph.id") == before
    frontend.take_events()


# -------------------------------------------------------------------------------------------------------------
# The template browser

def close_dialogs(fe: Frontend) -> None:
    for button in fe.page.locator(".p-dialog .p-dialog-close-button, .p-dialog button[aria-label=Close]").all():
        if button.is_visible():
            button.click()
    fe.settle(0.8)


def test_templates_are_listed_once_with_thumbnails_and_open(host, frontend):
    listed = host.get("/workflow_templates")
    assert sorted(listed[PACK_FOLDER]) == sorted(p.stem for p in WORKFLOWS), listed   # once each
    frontend.take_events()
    frontend.page.evaluate("app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    dialog = frontend.page.locator(".p-dialog")
    try:
        dialog.get_by_text(PACK_FOLDER).first.click()
        for p in WORKFLOWS:
            dialog.get_by_text(p.stem, exact=True).first.wait_for(timeout=20_000)
        frontend.settle(2)
        # the cards' pictures are the thumbnails beside the files (fetched, then shown from blobs)
        sizes = frontend.page.evaluate("""() => [...document.querySelectorAll('.p-dialog img')]
            .filter(i => i.complete).map(i => [i.naturalWidth, i.naturalHeight])""")
        frontend.screenshot(ARTIFACTS / "template_browser.png")
        from PIL import Image
        thumb = list(Image.open(WORKFLOWS[0].with_suffix(".jpg")).size)
        assert sizes.count(thumb) == len(WORKFLOWS), (sizes, thumb)
        # a click on a card opens that workflow, as the file itself would
        target = REPO / "workflows" / "stableanimator_hjb_identity.json"
        dialog.get_by_text(target.stem, exact=True).first.click()
        frontend.page.wait_for_function(f"app.graph.id === {json.dumps(load_file(target)['id'])}", timeout=20_000)
        frontend.wait_loaded(len(load_file(target)["nodes"]))
        frontend.settle(1.5)
        assert not frontend.visible_dialogs(), frontend.visible_dialogs()
    finally:
        close_dialogs(frontend)
    assert not problems(frontend)   # a missing thumbnail would be an HTTP 404 here


def test_missing_model_dialog_offers_the_download(frontend, tmp_path):
    """properties.models of the loader is what the frontend's Missing Models dialog lists when the file is not in
    models/checkpoints: with an allowed source and suffix it offers a download instead of an error."""
    wf = load_file(REPO / "workflows" / "stableanimator_basic.json")
    loader = next(n for n in wf["nodes"] if n["type"] == "StableAnimatorModelLoader")
    missing = "svd_xt_not_here.safetensors"
    loader["widgets_values"][0] = missing
    loader["properties"]["models"][0]["name"] = missing
    wf["id"] = "0d8c5d0e-5a4e-4b53-9f3c-6f0c2b7a9e11"
    path = tmp_path / "missing_model.json"
    path.write_text(json.dumps(wf))
    frontend.drop_workflow(path)
    frontend.wait_loaded(len(wf["nodes"]))
    frontend.page.get_by_text("Missing Models").first.wait_for(timeout=10_000)
    text = "\n".join(frontend.visible_dialogs())
    frontend.screenshot(ARTIFACTS / "missing_model_dialog.png")
    close_dialogs(frontend)
    assert f"checkpoints / {missing}" in text, text
    assert "Download" in text and "not allowed" not in text and "Only allowed suffixes" not in text \
        and "Invalid directory" not in text, text
    assert not frontend.visible_dialogs()
    frontend.take_events()   # the missing image previews of this copy are expected


# -------------------------------------------------------------------------------------------------------------
# Running from the Run button

def toy_settings(wf: dict, stem: str, report: dict) -> list[tuple]:
    """What a user changes for a first try on a CPU: the video size (on the one node that sets it), frame count,
    steps, devices, and a reference photo the stand-in face detector of the test weights can see."""
    changes = []
    for n in wf["nodes"]:
        t, title = n["type"], n.get("title", "")
        if t in ("StableAnimatorPoseRender", "StableAnimatorResizeImage"):
            changes += [(n["id"], "width", TOY), (n["id"], "height", TOY)]
        elif t == "StableAnimatorConditioning":
            changes.append((n["id"], "frames", 20 if "long" in stem else 3))
        elif t == "StableAnimatorSampler":
            changes.append((n["id"], "steps", 2))
        elif t == "StableAnimatorHJB":
            changes += [(n["id"], "end_step", 1), (n["id"], "iterations", 1), (n["id"], "context", 2)]
        elif t == "StableAnimatorFaceAnalysisLoader":
            changes.append((n["id"], "provider", "CPU"))
        elif t == "StableAnimatorDWPoseLoader":
            changes.append((n["id"], "device", "cpu"))
        elif t == "StableAnimatorFaceEmbed":
            changes.append((n["id"], "min_face_size", 0))   # faces in 64x64 toy frames are tiny
        elif t == "LoadImage" and title == "Reference photo":
            changes.append((n["id"], "image", FACE_REFERENCE))
        elif t == "SaveAnimatedWEBP":
            changes += [(n["id"], "filename_prefix", f"browser_{stem}"), (n["id"], "lossless", True)]
        elif t == "SaveImage":
            changes.append((n["id"], "filename_prefix", f"browser_{stem}_plot"))
    if "long" in stem:   # 20 frames in windows of 8: three windows, the long-video code path
        holder = next(n for n in report["nodes"] if any(w["name"] == "window" for w in n["widgets"]))
        changes += [(holder["id"], "window", 8), (holder["id"], "overlap", 2)]
    return changes


def wait_for_new_prompt(host, known: set, timeout: float = 900) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        history = host.get("/history")
        new = [v for k, v in history.items() if k not in known]
        if new and new[0].get("status", {}).get("completed") is not None:
            return new[0]
        if new and new[0].get("status", {}).get("status_str") == "error":
            return new[0]
        time.sleep(0.5)
    raise TimeoutError("the prompt queued by the Run button did not finish")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_runs_from_the_run_button(host, frontend, path):
    wf = open_by(frontend, path, "drop")
    for node_id, name, value in toy_settings(wf, path.stem, frontend.graph_report()):
        frontend.set_widget(node_id, name, value)
    known = set(host.get("/history"))
    started = time.time()
    frontend.click_run()
    entry = wait_for_new_prompt(host, known)
    seconds = time.time() - started
    frontend.settle(1.5)
    frontend.screenshot(ARTIFACTS / f"{path.stem}_after_run.png")
    frontend.fit_all(focus_mode=False)   # the whole graph with its previews, for the artefacts
    frontend.screenshot(ARTIFACTS / f"{path.stem}_after_run_all.png")
    assert entry["status"]["status_str"] == "success", host.error_message(entry)
    assert not problems(frontend), problems(frontend)
    assert not frontend.visible_dialogs(), frontend.visible_dialogs()
    # the video the Save node wrote: every requested frame at the toy size, not blank
    videos = [host.output_dir / i["subfolder"] / i["filename"] for out in entry["outputs"].values()
              for i in out.get("images", []) if i["filename"].endswith(".webp") and i.get("type") == "output"]
    assert len(videos) == 1, entry["outputs"]
    frames = e2e.webp_frames(videos[0])
    expected = 20 if "long" in path.stem else 3
    assert len(frames) == expected and frames[0].shape == (TOY, TOY, 3), (len(frames), frames[0].shape)
    assert all(np.asarray(f, float).std() > 1.0 for f in frames)
    for n in wf["nodes"]:   # the identity check of the HJB workflow: its summary and its saved plot
        if n["type"] == "StableAnimatorIdentitySimilarity":
            assert entry["outputs"][str(n["id"])]["text"][0].startswith("CSIM"), entry["outputs"]
            plots = [i for out in entry["outputs"].values() for i in out.get("images", [])
                     if i["filename"].endswith(".png") and i.get("type") == "output"]
            assert plots and (host.output_dir / plots[0]["subfolder"] / plots[0]["filename"]).is_file()
    print(f"\n[browser] {path.stem}: Run button -> {len(frames)} frames {TOY}x{TOY} in {seconds:.1f} s")
