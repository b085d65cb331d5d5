"""Scale benchmark of the LatticeGraph widget, in a real (headless) browser.

First, issue 12's targets (``--targets``, on by default), each in Chromium with a
``PerformanceObserver`` of long tasks (main-thread tasks over 50 ms):

* a 10,000-electron fan-out (traced and dispatched for real): the longest
  main-thread task during the first paint, and during live updates (the states
  string changing ten times a second, as the publisher sends it, until every
  node completed);
* a 100,000-electron fan-out: from the moment the dispatch has ended
  (``get_result(wait=True)`` returned) until the browser painted the grouped
  graph: building the widget in Python (grouping, layout, the SVG), its state
  as JSON, and the first paint;
* "show parameters" on a 10,000-node graph drawn node by node (``group=False``,
  parameters hidden at first, as the widget starts big graphs): from the click
  until the frame with the parameters is painted.

Then, for lattices of about 1,000 and 10,000 nodes drawn node by node:

* Python layout time, per engine (Graphviz ``dot`` and the layered networkx
  layout), cache cleared before each run;
* first paint: from calling the widget's ``render()`` until cytoscape has
  drawn its first frame and the browser has painted;
* pannability at 10k: frame intervals while a real mouse drags the graph;
* recolouring 10% of the nodes: from the model's ``states`` change until the
  frame showing the new colours is painted (and the synchronous part alone).

The browser part loads the built bundle (``covalent_nb/static/graph.js``)
into a plain local page with a tiny fake of anywidget's model API
(get/set/on/off/save_changes/send), served from 127.0.0.1; the graph payload
is the one the widget sends, made by the real tracing and layout code.
Chromium is Debian's (``/usr/bin/chromium``) driven by Playwright.

Run:  python benchmarks/widget_scale.py [--repeat 3] [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import functools
import http.server
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import covalent_nb as ct  # noqa: E402
from covalent_nb.notebook import layout as layout_mod  # noqa: E402
from covalent_nb.notebook.graph_widget import AUTO_HIDE_PARAMS, BUNDLE, graph_payload  # noqa: E402
from covalent_nb.notebook.states import CODES  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


# A map-reduce lattice: per item load -> clean -> score, then one total.
# Each item adds 5 nodes (3 electrons, 2 parameters).
@ct.electron
def load(i):
    return i


@ct.electron
def clean(x):
    return x


@ct.electron
def score(x, weight):
    return x * weight


@ct.electron
def total(xs):
    return sum(xs)


@ct.lattice
def pipeline(n):
    return total([score(clean(load(i)), 2) for i in range(n)])


def build_graph(nodes: int):
    """Trace the pipeline lattice to a graph of about *nodes* nodes."""
    return pipeline.build_graph(max(1, (nodes - 3) // 5))


def time_layouts(graph, repeat: int) -> dict:
    out = {}
    engines = ["layered"] + (["dot"] if layout_mod.dot_available() else [])
    for engine in engines:
        runs = []
        # dot above DOT_MAX_NODES is not what the widget uses and takes many
        # seconds: timed once, for the record.
        slow = engine == "dot" and len(graph) > layout_mod.DOT_MAX_NODES
        for _ in range(1 if slow else repeat):
            layout_mod.clear_cache()
            t0 = time.perf_counter()
            layout_mod.layout_graph(graph, engine)
            runs.append(time.perf_counter() - t0)
        out[engine] = runs
    return out


HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"><title>widget scale</title></head>
<body style="margin:0">
<div id="host" style="width:1200px"></div>
<script type="module">
// Loading the bundle (parse + evaluate, cytoscape included) happens once per
// page, before the first render; it is timed on its own.
const loadStart = performance.now();
const widget = (await import("./graph.js")).default;
window.bundleLoadMs = performance.now() - loadStart;

// The part of anywidget's model API the view uses.
class FakeModel {
  constructor(state) { this.state = state; this.handlers = {}; this.sent = []; }
  get(key) { return this.state[key]; }
  set(key, value) {
    this.state[key] = value;
    for (const fn of this.handlers["change:" + key] || []) fn();
  }
  on(name, fn) { (this.handlers[name] ||= []).push(fn); }
  off(name, fn) { this.handlers[name] = (this.handlers[name] || []).filter((f) => f !== fn); }
  save_changes() {}
  send(msg) { this.sent.push(msg); }
}

const painted = (cy) => new Promise((resolve) => {
  cy.one("render", () => requestAnimationFrame(() => resolve(performance.now())));
});

window.longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.longTasks.push({start: e.startTime, ms: e.duration});
}).observe({ type: "longtask", buffered: true });

window.bench = {
  longest(since) {
    const mine = window.longTasks.filter((t) => t.start >= since);
    return { longest: Math.max(0, ...mine.map((t) => t.ms)), count: mine.length };
  },
  async live(frames) {
    // The publisher's ticks: one states string every 100 ms.
    const t0 = performance.now();
    for (const next of frames) {
      window.model.set("states", next);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return { ms: performance.now() - t0, ...bench.longest(t0) };
  },
  async showParams() {
    const root = document.querySelector(".cnb-graph");
    const cy = root.__cy;
    // The hidden parameters are created in idle slices after the first paint.
    const idle0 = performance.now();
    while (root.dataset.auxReady !== "true" && performance.now() - idle0 < 20000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const background = { backgroundMs: performance.now() - idle0, backgroundLongest: bench.longest(idle0).longest };
    const done = painted(cy);
    const t0 = performance.now();
    document.querySelector("input.cnb-toggle-params").click();
    const t1 = await done;
    return { ms: t1 - t0, nodes: cy.nodes(":visible").length, ...bench.longest(t0), ...background };
  },
  async mount(state) {
    const host = document.getElementById("host");
    if (window.cleanup) window.cleanup();
    host.innerHTML = "";
    window.model = new FakeModel(state);
    const t0 = performance.now();
    window.cleanup = widget.render({ model: window.model, el: host });
    const renderCall = performance.now() - t0;
    const cy = host.querySelector(".cnb-graph").__cy;
    const t1 = await painted(cy);
    return { firstPaint: t1 - t0, renderCall, ...bench.longest(t0) };
  },
  async fitAll() {
    const cy = document.querySelector(".cnb-graph").__cy;
    const done = painted(cy);
    const t0 = performance.now();
    document.querySelector("button.cnb-fit").click();
    const t1 = await done;
    return t1 - t0;
  },
  visibleNodes() {
    const cy = document.querySelector(".cnb-graph").__cy;
    const ext = cy.extent();
    return cy.nodes().filter((n) => {
      const p = n.position();
      return p.x >= ext.x1 && p.x <= ext.x2 && p.y >= ext.y1 && p.y <= ext.y2;
    }).length;
  },
  async recolour(next) {
    const cy = document.querySelector(".cnb-graph").__cy;
    const done = painted(cy);
    const t0 = performance.now();
    window.model.set("states", next);
    const sync = performance.now() - t0;
    const t1 = await done;
    return { painted: t1 - t0, sync };
  },
  startFrames() {
    window.frames_ = [];
    window.renders_ = 0;
    const cy = document.querySelector(".cnb-graph").__cy;
    window.countRender_ = () => { window.renders_ += 1; };
    cy.on("render", window.countRender_);
    const tick = (t) => { window.frames_.push(t); if (window.frames_ !== null) window.raf_ = requestAnimationFrame(tick); };
    window.raf_ = requestAnimationFrame(tick);
  },
  stopFrames() {
    cancelAnimationFrame(window.raf_);
    const cy = document.querySelector(".cnb-graph").__cy;
    cy.off("render", window.countRender_);
    const f = window.frames_;
    const gaps = f.slice(1).map((t, i) => t - f[i]);
    return { gaps, renders: window.renders_, pan: cy.pan() };
  },
  legend() {
    return [...document.querySelectorAll(".cnb-legend [data-state]")].map((e) => e.textContent);
  },
};
window.ready = true;
</script></body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: str):
    handler = functools.partial(_QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser_bench(payloads: dict, repeat: int, screenshots: Path | None) -> dict:
    from playwright.sync_api import sync_playwright

    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(BUNDLE, Path(tmp) / "graph.js")
        (Path(tmp) / "index.html").write_text(HARNESS)
        server = serve(tmp)
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for size, state in payloads.items():
                    n = state["graph"]["n"]
                    row = results.setdefault(size, {
                        "nodes": n, "first_paint": [], "recolour": [], "recolour_sync": [],
                        "fit_all": [], "recolour_all": [], "recolour_all_sync": []})
                    uncounted = {i for i, k in enumerate(state["graph"]["kinds"]) if k == "p"}
                    for r in range(repeat):
                        page.goto(url)
                        page.wait_for_function("window.ready === true")
                        row.setdefault("bundle_load", []).append(page.evaluate("window.bundleLoadMs"))
                        row["first_paint"].append(page.evaluate("s => bench.mount(s)", state)["firstPaint"])
                        row["visible_at_first"] = page.evaluate("bench.visibleNodes()")
                        # Recolour 10% of the nodes (pending -> running -> completed),
                        # in the first view and with the whole graph in view.
                        rng = random.Random(r)
                        current = state["states"]
                        for key, new_state in (("recolour", "running"), ("recolour_all", "completed")):
                            if key == "recolour_all":
                                row["fit_all"].append(page.evaluate("bench.fitAll()"))
                            chosen = set(rng.sample(sorted(set(range(n)) - uncounted), n // 10))
                            current = "".join(CODES[new_state] if i in chosen else c
                                              for i, c in enumerate(current))
                            rec = page.evaluate("s => bench.recolour(s)", current)
                            row[key].append(rec["painted"])
                            row[key + "_sync"].append(rec["sync"])
                        legend = page.evaluate("bench.legend()")
                        expected = sum(1 for c in current if c == CODES["completed"]) - len(uncounted)
                        assert f"completed {expected}" in legend, (legend, expected)
                    if size == max(payloads):
                        row["pan"] = pan_bench(page)  # with the whole graph in view
                    if screenshots:
                        screenshots.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(screenshots / f"widget-{size}.png"))
                browser.close()
        finally:
            server.shutdown()
    return results


def pan_bench(page) -> dict:
    """Drag the graph with the mouse and record the browser's frame intervals."""
    box = page.locator(".cnb-canvas").bounding_box()
    # Start in the empty top-left corner: a drag that starts on a node does not pan.
    cx, cy = box["x"] + 8, box["y"] + 8
    page.evaluate("bench.startFrames()")
    page.mouse.move(cx, cy)
    page.mouse.down()
    t0 = time.perf_counter()
    for step in range(60):
        page.mouse.move(cx + 4 * (step + 1), cy + 2 * (step + 1))
        page.wait_for_timeout(16)
    page.mouse.up()
    elapsed = time.perf_counter() - t0
    page.wait_for_timeout(200)
    out = page.evaluate("bench.stopFrames()")
    gaps = out["gaps"]
    return {"frame_ms_median": statistics.median(gaps) if gaps else float("nan"),
            "frame_ms_p95": sorted(gaps)[int(0.95 * (len(gaps) - 1))] if gaps else float("nan"),
            "renders": out["renders"], "drag_s": elapsed, "pan": out["pan"]}


@ct.electron
def featurize(i):
    return i


@ct.electron
def summarize(xs):
    return len(xs)


@ct.lattice
def fan_out(n):
    return summarize([featurize(i) for i in range(n)])


def widget_state(widget) -> dict:
    """The synced traits of a LatticeGraph, as the browser's model holds them."""
    names = ("dispatch_id", "status", "started_at", "ended_at", "graph", "states", "replaced",
             "failures", "cancel_requested", "hide_params", "expanded", "selected", "details")
    return {name: getattr(widget, name) for name in names}


def live_frames(states: str, steps: int = 20) -> list:
    """States strings from all pending to all completed, as ten ticks a second would send them."""
    codes = list(states)
    todo = [i for i, c in enumerate(codes) if c == CODES["pending"]]
    frames = []
    per = max(1, len(todo) // steps)
    running: list = []
    for k in range(0, len(todo) + per, per):
        for i in running:
            codes[i] = CODES["completed"]
        running = todo[k:k + per]
        for i in running:
            codes[i] = CODES["running"]
        frames.append("".join(codes))
    return frames


def targets(repeat: int, screenshots) -> dict:
    """Issue 12's three targets, measured as the module docstring says."""
    from playwright.sync_api import sync_playwright

    from covalent_nb.widgets import LatticeGraph

    ct.set_config(store="memory")
    out: dict = {"fan10k_first_paint": [], "fan10k_first_longest": [], "fan10k_live_longest": [],
                 "fan100k_python": [], "fan100k_json": [], "fan100k_paint": [], "fan100k_total": [],
                 "params10k": [], "params10k_longest": []}
    result10k = ct.dispatch_sync(fan_out)(10_000)
    assert result10k.status == "COMPLETED"
    state10k = widget_state(LatticeGraph(result10k))
    # live: the same graph from the start of its run
    state10k.update(status="RUNNING", ended_at=0.0, states="".join(
        CODES["completed"] if k == "p" else CODES["pending"] for k in state10k["graph"]["kinds"]))
    frames = live_frames(state10k["states"])
    flat = build_graph(10_000)
    params = {"dispatch_id": "bench-params", "status": "COMPLETED", "graph": graph_payload(flat, group=False),
              "states": CODES["completed"] * len(flat), "replaced": [], "hide_params": True,
              "selected": -1, "details": {}, "failures": [], "expanded": {}}
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(BUNDLE, Path(tmp) / "graph.js")
        (Path(tmp) / "index.html").write_text(HARNESS)
        server = serve(tmp)
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})

                def fresh():
                    page.goto(url)
                    page.wait_for_function("window.ready === true")

                for r in range(repeat):
                    fresh()
                    first = page.evaluate("s => bench.mount(s)", state10k)
                    out["fan10k_first_paint"].append(first["firstPaint"])
                    out["fan10k_first_longest"].append(first["longest"])
                    live = page.evaluate("f => bench.live(f)", frames)
                    out["fan10k_live_longest"].append(live["longest"])
                    if r == 0 and screenshots:
                        screenshots.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=str(screenshots / "fan-out-10000.png"))

                    fresh()
                    page.evaluate("s => bench.mount(s)", params)
                    shown = page.evaluate("bench.showParams()")
                    out["params10k"].append(shown["ms"])
                    out.setdefault("params10k_background", []).append(shown["backgroundLongest"])
                    out["params10k_longest"].append(shown["longest"])

                    # 100,000 electrons: dispatched for real; the clock starts when it has ended.
                    fresh()
                    dispatch_id = ct.dispatch(fan_out)(100_000)
                    result = ct.get_result(dispatch_id, wait=True)
                    t0 = time.perf_counter()
                    widget = LatticeGraph(result)
                    widget._repr_mimebundle_()  # the static SVG, as a display computes it
                    t1 = time.perf_counter()
                    payload = json.dumps(widget_state(widget))
                    t2 = time.perf_counter()
                    paint = page.evaluate("s => bench.mount(JSON.parse(s))", payload)["firstPaint"]
                    t3 = time.perf_counter()
                    out["fan100k_python"].append(t1 - t0)
                    out["fan100k_json"].append(t2 - t1)
                    out["fan100k_paint"].append(paint / 1000)
                    out["fan100k_total"].append(t3 - t0)
                    groups = page.evaluate("() => document.querySelector('.cnb-graph').__cy.nodes().length")
                    assert groups == 4, groups  # grouped: the group, the list, summarize, the result
                    widget.close()
                    if r == 0 and screenshots:
                        page.screenshot(path=str(screenshots / "fan-out-100000.png"))
                browser.close()
        finally:
            server.shutdown()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="save a screenshot of each size's widget here")
    parser.add_argument("--no-browser", action="store_true", help="layout timings only")
    parser.add_argument("--no-targets", action="store_true", help="skip issue 12's targets")
    parser.add_argument("--engine", default="auto", choices=layout_mod.ENGINES,
                        help="layout engine of the graphs drawn in the browser")
    args = parser.parse_args(argv)

    if not BUNDLE.is_file():
        print(f"{BUNDLE} is missing: pip install -e . (or npm run build in js/)", file=sys.stderr)
        return 2

    if not args.no_browser and not args.no_targets:
        t = targets(args.repeat, args.screenshots)
        med = statistics.median
        print(f"Issue 12 targets (headless Chromium, software rendering; median of {args.repeat}, worst in brackets)")
        print(f"  10,000-electron fan-out: first paint {med(t['fan10k_first_paint']):.0f} ms; longest main-thread "
              f"task {med(t['fan10k_first_longest']):.0f} ms [{max(t['fan10k_first_longest']):.0f}] (target < 200)")
        print(f"  10,000-electron fan-out, live updates at 10/s until done: longest main-thread task "
              f"{med(t['fan10k_live_longest']):.0f} ms [{max(t['fan10k_live_longest']):.0f}] (target < 200)")
        print(f"  100,000-electron fan-out, dispatch ended -> grouped graph painted: "
              f"{med(t['fan100k_total']):.2f} s [{max(t['fan100k_total']):.2f}] (target < 2 s): "
              f"widget in Python {med(t['fan100k_python']):.2f} s, state to JSON {med(t['fan100k_json']):.2f} s, "
              f"first paint {med(t['fan100k_paint']):.2f} s")
        print(f"  show parameters on 10,000 nodes (ungrouped): {med(t['params10k']):.0f} ms "
              f"[{max(t['params10k']):.0f}] (target < 200); longest task {med(t['params10k_longest']):.0f} ms; "
              f"longest task while the hidden parameters were created in the background "
              f"{med(t['params10k_background']):.0f} ms")

    payloads = {}
    print("Python layout (seconds, median of %d; cache cleared each run)" % args.repeat)
    for size in args.sizes:
        graph = build_graph(size)
        auto = layout_mod.layout_graph(graph, "auto").engine
        for engine, runs in time_layouts(graph, args.repeat).items():
            note = "  (what the widget uses)" if engine == auto else ""
            if len(runs) == 1 and args.repeat > 1:
                note += "  (one run)"
            print(f"  {len(graph):>6} nodes  {engine:<8} {statistics.median(runs):7.3f} s{note}")
        payloads[size] = {
            "dispatch_id": f"bench-{size}", "status": "RUNNING",
            "graph": graph_payload(graph, args.engine, group=False),
            "states": CODES["pending"] * len(graph),
            # As the widget does by default: big graphs start without parameter dots.
            "replaced": [], "hide_params": len(graph) > AUTO_HIDE_PARAMS,
            "selected": -1, "details": {},
        }
        # Parameters are complete before anything runs, as in a real dispatch.
        states = list(payloads[size]["states"])
        for i, kind in enumerate(payloads[size]["graph"]["kinds"]):
            if kind == "p":
                states[i] = CODES["completed"]
        payloads[size]["states"] = "".join(states)

    if args.no_browser:
        return 0
    results = browser_bench(payloads, args.repeat, args.screenshots)
    med = statistics.median
    print(f"Browser (headless Chromium, software rendering; median of {args.repeat}; ms)")
    for size, row in results.items():
        n = row["nodes"]
        print(f"  {n:>6} nodes  bundle load {med(row['bundle_load']):7.1f}  (once per page)")
        print(f"  {n:>6} nodes  first paint {med(row['first_paint']):7.1f}"
              f"  ({row['visible_at_first']} nodes in the first view)")
        print(f"  {n:>6} nodes  recolour 10% {med(row['recolour']):7.1f}"
              f"  (synchronous part {med(row['recolour_sync']):.1f})")
        print(f"  {n:>6} nodes  fit the whole graph {med(row['fit_all']):7.1f};"
              f" then recolour 10% {med(row['recolour_all']):7.1f}"
              f"  (synchronous part {med(row['recolour_all_sync']):.1f})")
        if "pan" in row:
            pan = row["pan"]
            print(f"  {n:>6} nodes  panning the whole graph: frame interval median"
                  f" {pan['frame_ms_median']:.1f}, p95 {pan['frame_ms_p95']:.1f};"
                  f" {pan['renders']} redraws during a {pan['drag_s']:.2f} s drag")
    return 0


if __name__ == "__main__":
    sys.exit(main())
