"""ComfyUI's real frontend in Debian's Chromium, driven by Playwright: open workflows the way a user does
(drag-and-drop, Workflow > Open), read back what the frontend drew (node boxes, widgets, groups, notes), press Run.

Used by tests/test_browser.py and scripts/build_workflows.py. Needs `chromium` (Debian package; SA_CHROMIUM
names another binary) and the `playwright` Python package; Playwright's own browser download is never used.

    with Frontend(host.url, workdir) as fe:
        fe.drop_workflow(path)
        report = fe.graph_report()
"""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

# Flags that work headless in a container: no sandbox, no GPU, nothing fetched from the network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1600, "height": 1000}
# Settings a user would click away on a first visit: the templates dialog, the minimap and the frame-rate
# figures over the canvas.
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasInfo": False}
# What the frontend keeps in the browser's storage after a user dismissed its banners.
LOCAL_STORAGE = {"vueNodesBannerDismissed": "true", "Comfy.ConflictWarningBannerDismissed": "true"}


def chromium_path() -> str:
    path = os.environ.get("SA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium is not installed: run scripts/setup_host.sh with WITH_BROWSER=1 "
                           "(apt-get install chromium), or point SA_CHROMIUM at a Chromium binary")
    return path


# Everything the checks need from the live graph, read in one call. Widgets are laid out by the frontend only
# when drawn, so each node is arranged here first (the same calls its draw makes).
GRAPH_REPORT_JS = """
() => {
  const TH = LiteGraph.NODE_TITLE_HEIGHT;
  const nodes = app.graph.nodes.map(n => {
    n._setConcreteSlots?.();
    n.arrange?.();
    const badges = (n.badges || []).map(b => typeof b === 'function' ? b() : b);
    const c = n.computeSize();
    return {   // ids as numbers: newer frontends hold the file's numbers as strings
      id: (typeof n.id === 'string' && /^[0-9]+$/.test(n.id)) ? Number(n.id) : n.id, type: n.type, title: n.title, pos: [n.pos[0], n.pos[1]], size: [n.size[0], n.size[1]],
      computed: [c[0], c[1]], title_height: TH,
      badge_height: badges.length ? Math.max(...badges.map(b => b.height || 0)) + 2 : 0,
      registered: !!LiteGraph.registered_node_types[n.type],
      has_errors: !!n.has_errors, mode: n.mode, properties: n.properties,
      widgets: (n.widgets || []).map(w => ({
        name: w.name, type: w.type, value: (typeof w.value === 'object' ? null : w.value),
        y: (w.y ?? w.last_y ?? null), height: (w.computedHeight ?? LiteGraph.NODE_WIDGET_HEIGHT),
        values: Array.isArray(w.options?.values) ? w.options.values : null,
        min: w.options?.min ?? null, max: w.options?.max ?? null,
        serialize: w.serialize !== false,   // in widgets_values (options.serialize is about the prompt)
      })),
      inputs: (n.inputs || []).map(i => ({name: i.name, type: i.type, link: i.link, widget: i.widget?.name ?? null})),
      outputs: (n.outputs || []).map(o => ({name: o.name, type: o.type, links: o.links || []})),
    };
  });
  const groups = app.graph.groups.map(g => ({title: g.title, bounding: Array.from(g._bounding),
                                             title_height: g.titleHeight}));
  return {nodes, groups, scale: app.canvas.ds.scale, offset: Array.from(app.canvas.ds.offset),
          links: Object.keys(app.graph.links ?? {}).length || app.graph.links?.size || 0,
          canvas: [app.canvas.canvas.clientWidth, app.canvas.canvas.clientHeight]};
}
"""

# How much of a note's text is hidden: the content height of its DOM view (MarkdownNote's rendered markdown, Note's
# textarea) against the box it is given, at scale 1.
NOTE_OVERFLOW_JS = """
async (id) => {
  const n = app.graph.nodes.find(n => String(n.id) === String(id));
  app.canvas.ds.scale = 1;
  app.canvas.centerOnNode(n);
  app.canvas.setDirty(true, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  await new Promise(r => setTimeout(r, 300));
  const w = n.widgets.find(w => w.element);
  const el = w.element.querySelector?.('.tiptap') || w.element.querySelector?.('textarea') || w.element;
  return {scroll: el.scrollHeight, client: el.clientHeight, visible: el.offsetParent !== null};
}
"""


_PLAYWRIGHT = {"driver": None, "users": 0}   # one Playwright per process: two frontends share it


def _playwright_start():
    from playwright.sync_api import sync_playwright
    if _PLAYWRIGHT["driver"] is None:
        _PLAYWRIGHT["driver"] = sync_playwright().start()
    _PLAYWRIGHT["users"] += 1
    return _PLAYWRIGHT["driver"]


def _playwright_stop():
    _PLAYWRIGHT["users"] -= 1
    if _PLAYWRIGHT["users"] == 0 and _PLAYWRIGHT["driver"] is not None:
        _PLAYWRIGHT["driver"].stop()
        _PLAYWRIGHT["driver"] = None


class Frontend:
    def __init__(self, url: str, workdir, viewport=VIEWPORT):
        self.url, self.viewport = url, viewport
        self.workdir = Path(workdir)
        self.events: list[tuple[str, str]] = []   # (kind, text): console errors, page errors, alerts, HTTP >= 400
        self._pw = self._ctx = self.page = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> "Frontend":
        self._post_settings()
        self._pw = _playwright_start()
        profile = self.workdir / "chromium-profile"
        shutil.rmtree(profile, ignore_errors=True)
        self._ctx = self._pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True,
            viewport=self.viewport, accept_downloads=False)
        self._ctx.add_init_script("".join(f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)});"
                                          for k, v in LOCAL_STORAGE.items()))
        self.page = self._ctx.pages[0] if self._ctx.pages else self._ctx.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.events.append(("console", m.text)))
        self.page.on("pageerror", lambda e: self.events.append(("pageerror", str(e))))
        self.page.on("dialog", self._on_dialog)
        self.page.on("response", lambda r: r.status >= 400 and self.events.append(("http", f"{r.status} {r.url}")))
        self.page.goto(self.url)
        self.page.wait_for_function("window.app && window.app.graph && window.LiteGraph && app.canvas", timeout=120_000)
        self.page.wait_for_selector("[data-testid=queue-button]", timeout=60_000)
        return self

    def __exit__(self, *exc):
        if self._ctx:
            self._ctx.close()
        if self._pw:
            _playwright_stop()
            self._pw = None

    def _on_dialog(self, dialog):
        self.events.append(("alert", dialog.message))
        dialog.dismiss()

    def _post_settings(self):
        req = urllib.request.Request(self.url + "/settings", data=json.dumps(SETTINGS).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()

    def take_events(self) -> list[tuple[str, str]]:
        events, self.events = self.events, []
        return events

    # -- opening workflows -----------------------------------------------------------------------------
    def wait_loaded(self, expected_nodes: int, timeout: float = 30) -> None:
        self.page.wait_for_function(f"app.graph.nodes.length === {expected_nodes}", timeout=timeout * 1000)
        self.settle()

    def settle(self, seconds: float = 0.8) -> None:
        """Let the frontend finish what a load starts (dialogs, size fixes, two animation frames)."""
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        time.sleep(seconds)

    def drop_workflow(self, path: Path) -> None:
        """Drag-and-drop of the file onto the canvas, as from a file manager."""
        text = Path(path).read_text()
        transfer = self.page.evaluate_handle(
            "([text, name]) => { const dt = new DataTransfer();"
            " dt.items.add(new File([text], name, {type: 'application/json'})); return dt; }", [text, Path(path).name])
        box = self.page.locator("#graph-canvas").bounding_box()
        at = {"clientX": box["x"] + box["width"] / 2, "clientY": box["y"] + box["height"] / 2}
        for event in ("dragenter", "dragover", "drop"):
            self.page.dispatch_event("#graph-canvas", event, {"dataTransfer": transfer, **at})

    def open_workflow(self, path: Path, tries: int = 3) -> None:
        """Workflow > Open (Ctrl+O) and the file picked in the browser's file dialog. On a busy machine the page
        can drop the key press while it is still handling the previous load: the user presses it again."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        for attempt in range(1, tries + 1):
            try:
                with self.page.expect_file_chooser(timeout=10_000) as chooser:
                    self.page.keyboard.press("Control+o")
                break
            except PlaywrightTimeout:
                if attempt == tries:
                    raise
                self.page.keyboard.press("Escape")   # whatever held the key: a menu or a dialog left open
                self.settle()
        chooser.value.set_files(str(path))

    # -- reading the graph -----------------------------------------------------------------------------
    def graph_report(self) -> dict:
        return self.page.evaluate(GRAPH_REPORT_JS)

    def note_overflow(self, node_id: int) -> dict:
        return self.page.evaluate(NOTE_OVERFLOW_JS, node_id)

    def restore_view(self, scale: float, offset) -> None:
        self.page.evaluate("([s, o]) => { app.canvas.ds.scale = s; app.canvas.ds.offset = o;"
                           " app.canvas.setDirty(true, true); }", [scale, list(offset)])
        self.settle(0.5)

    def visible_dialogs(self) -> list[str]:
        """Texts of the frontend's open dialogs and error toasts (missing nodes or models, load errors)."""
        return self.page.evaluate("""() => [...document.querySelectorAll('.p-dialog, .p-toast-message-error')]
            .filter(e => e.offsetParent !== null).map(e => e.innerText.trim().slice(0, 500))""")

    def fit_all(self, focus_mode: bool = True) -> None:
        """The whole graph in view, the frontend's menus hidden (its Focus Mode): how a thumbnail shows a workflow."""
        self.page.evaluate("""async (focus) => {
            if (focus) await app.extensionManager.command.execute('Workspace.ToggleFocusMode');
            await new Promise(r => setTimeout(r, 300));
            const b = [Infinity, Infinity, -Infinity, -Infinity];
            for (const g of app.graph.groups) { const [x, y, w, h] = g._bounding;
              b[0] = Math.min(b[0], x); b[1] = Math.min(b[1], y); b[2] = Math.max(b[2], x + w); b[3] = Math.max(b[3], y + h); }
            const cw = app.canvas.canvas.clientWidth, ch = app.canvas.canvas.clientHeight, m = 20;
            const s = Math.min((cw - 2 * m) / (b[2] - b[0]), (ch - 2 * m) / (b[3] - b[1]));
            app.canvas.ds.scale = s;
            app.canvas.ds.offset = [(cw - s * (b[2] - b[0])) / 2 / s - b[0], (ch - s * (b[3] - b[1])) / 2 / s - b[1]];
            app.canvas.setDirty(true, true); }""", focus_mode)
        self.settle(1.0)

    def screenshot(self, path: Path) -> Path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return Path(path)

    # -- editing and running ---------------------------------------------------------------------------
    def set_widget(self, node_id: int, name: str, value) -> None:
        """What typing a value into a widget does: the value, then the widget's own callback."""
        ok = self.page.evaluate("""([id, name, value]) => {
            const n = app.graph.nodes.find(n => String(n.id) === String(id));
            const w = n?.widgets?.find(w => w.name === name);
            if (!w) return false; w.value = value; w.callback?.(value, app.canvas, n); n.setDirtyCanvas(true, true);
            return true; }""", [node_id, name, value])
        if not ok:
            raise KeyError(f"node {node_id} has no widget '{name}'")

    def click_run(self) -> None:
        self.page.locator("[data-testid=queue-button]").first.click()
