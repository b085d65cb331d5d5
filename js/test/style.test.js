import { test } from "node:test";
import assert from "node:assert/strict";
import { STATES } from "../src/states.js";
import {
  FALLBACK_THEME, fitViewport, stateStyle, stylesheet, textColourOn, themeFrom,
} from "../src/style.js";

// The palette comes from Python (graph["palette"], notebook/states.py PALETTE):
// these made-up colours stand in for it, so nothing here depends on its values.
const PALETTE = Object.freeze({
  pending: "#101010",
  running: "#202020",
  completed: "#303030",
  reused: "#404040",
  failed: "#505050",
  cancelled: "#606060",
  replaced: "#707070",
});

test("stateStyle fills each state with its palette colour", () => {
  for (const state of STATES) {
    assert.equal(stateStyle(state, PALETTE)["background-color"], PALETTE[state]);
  }
});

test("the palette given is the only source of colours", () => {
  const other = Object.fromEntries(Object.keys(PALETTE).map((k, i) => [k, `#00000${i}`]));
  const fills = STATES.map((s) => stateStyle(s, other)["background-color"]);
  assert.deepEqual(fills, STATES.map((s) => other[s]));
  const sheet = stylesheet({ palette: other, theme: FALLBACK_THEME, large: false });
  assert.equal(sheet.find((r) => r.selector === "node.cnb-replaced").style["border-color"], other.replaced);
});

test("stateStyle falls back to pending's colour for an unknown state", () => {
  assert.equal(stateStyle("bogus", PALETTE)["background-color"], PALETTE.pending);
});

test("cancelled nodes get a dashed border, others solid", () => {
  assert.equal(stateStyle("cancelled", PALETTE)["border-style"], "dashed");
  assert.equal(stateStyle("completed", PALETTE)["border-style"], "solid");
});

test("textColourOn picks a readable label colour", () => {
  assert.equal(textColourOn("#ffffff"), "#000000");
  assert.equal(textColourOn("#000000"), "#ffffff");
  assert.equal(textColourOn("#1a237e"), "#ffffff");
  assert.equal(textColourOn("not a colour"), "#000000");
});

test("themeFrom uses JupyterLab variables and falls back slot by slot", () => {
  const vars = { "--jp-ui-font-color1": " #eeeeee ", "--jp-layout-color1": "#111111" };
  const theme = themeFrom((name) => vars[name] || "");
  assert.equal(theme.text, "#eeeeee");
  assert.equal(theme.background, "#111111");
  assert.equal(theme.edge, FALLBACK_THEME.edge);
  assert.deepEqual(themeFrom(() => ""), { ...FALLBACK_THEME });
});

test("stylesheet has a rule per state using the given palette", () => {
  const palette = { ...PALETTE, reused: "#123456" };
  const sheet = stylesheet({ palette, theme: FALLBACK_THEME, large: false });
  const rule = sheet.find((r) => r.selector === 'node[state = "reused"]');
  assert.equal(rule.style["background-color"], "#123456");
  for (const state of STATES) {
    assert.ok(sheet.some((r) => r.selector === `node[state = "${state}"]`), state);
  }
});

test("stylesheet draws large graphs cheaply: haystack edges, no arrows", () => {
  const edge = (large) => stylesheet({ palette: PALETTE, theme: FALLBACK_THEME, large })
    .find((r) => r.selector === "edge").style;
  assert.equal(edge(true)["curve-style"], "haystack");
  assert.equal(edge(true)["target-arrow-shape"], "none");
  assert.equal(edge(false)["curve-style"], "bezier");
  assert.equal(edge(false)["target-arrow-shape"], "triangle");
});

test("stylesheet marks replaced nodes and hides hidden ones", () => {
  const sheet = stylesheet({ palette: PALETTE, theme: FALLBACK_THEME, large: false });
  assert.equal(sheet.find((r) => r.selector === "node.cnb-replaced").style["border-color"], PALETTE.replaced);
  // Hidden parameters stay measured (invisible), and take no clicks.
  const hidden = sheet.find((r) => r.selector === ".cnb-hidden").style;
  assert.equal(hidden.visibility, "hidden");
  assert.equal(hidden.events, "no");
  // Edges are dropped when zoomed far out.
  assert.equal(sheet.find((r) => r.selector === "edge.cnb-far").style.display, "none");
});

test("selection is a ring in the accent colour that never tints the fill", () => {
  const sheet = stylesheet({ palette: PALETTE, theme: FALLBACK_THEME, large: false });
  const selected = sheet.find((r) => r.selector === "node.cnb-selected").style;
  assert.equal(selected["outline-color"], FALLBACK_THEME.accent);
  assert.ok(selected["outline-width"] >= 2);
  for (const key of Object.keys(selected)) {
    assert.ok(!key.startsWith("background") && !key.startsWith("overlay"), key);
  }
});

test("labels are 11 px or more at zoom 1; groups are cards coloured by their state", () => {
  const sheet = stylesheet({ palette: PALETTE, theme: FALLBACK_THEME, large: false });
  for (const rule of sheet) {
    const size = rule.style["font-size"];
    if (size !== undefined) assert.ok(size >= 11, `${rule.selector}: ${size}`);
  }
  const group = sheet.find((r) => r.selector === "node.cnb-group").style;
  assert.equal(group["background-image"], "data(bar)");
  assert.equal(group["border-color"]({ data: (k) => ({ state: "failed" })[k] }), PALETTE.failed);
});

test("fitViewport centres a box that fits", () => {
  const { zoom, pan } = fitViewport({ x1: 0, y1: 0, x2: 100, y2: 50 }, 232, 132, 0, 16, 10);
  assert.equal(zoom, 2);
  assert.deepEqual(pan, { x: 16, y: 16 });
});

test("fitViewport never zooms in past maxZoom on a tiny graph", () => {
  const { zoom, pan } = fitViewport({ x1: 0, y1: 0, x2: 10, y2: 10 }, 400, 300, 0, 16, 1.5);
  assert.equal(zoom, 1.5);
  assert.deepEqual(pan, { x: 200 - 7.5, y: 150 - 7.5 });
});

test("fitViewport floors the zoom for a very wide graph and starts at its left", () => {
  const { zoom, pan } = fitViewport({ x1: 0, y1: 0, x2: 100000, y2: 200 }, 1000, 600, 0.25, 16);
  assert.equal(zoom, 0.25);
  assert.equal(pan.x, 16);
  assert.equal(pan.y, (600 - 0.25 * 200) / 2);
});

test("edges are left out of hit tests", () => {
  const edge = stylesheet({ palette: PALETTE, theme: FALLBACK_THEME, large: false })
    .find((r) => r.selector === "edge").style;
  assert.equal(edge.events, "no");
});
