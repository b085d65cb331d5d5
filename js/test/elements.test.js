import { test } from "node:test";
import assert from "node:assert/strict";
import { buildElements } from "../src/elements.js";

// 0 electron <- 1 parameter; 0 -> 2 electron -> 3 postprocess
const GRAPH = {
  labels: ["f", "1", "g", "postprocess"],
  x: [10, 10, 10, 10], y: [40, 10, 80, 120], w: [48, 14, 48, 14], h: [30, 14, 30, 14],
  aux: [1, 3], uncounted: [1],
  edges: [1, 0, 0, 2, 2, 3],
  edge_labels: ["x", "y", ""],
};
const STATES = ["completed", "completed", "running", "pending"];

const ids = (els) => els.map((e) => e.data.id).sort();

test("all elements carry position, size, label and state", () => {
  const els = buildElements(GRAPH, STATES, new Set(), false);
  assert.deepEqual(ids(els), ["0", "1", "2", "3", "e0", "e1", "e2"]);
  const g = els.find((e) => e.data.id === "2");
  assert.deepEqual(g.position, { x: 10, y: 80 });
  assert.equal(g.data.state, "running");
  assert.equal(g.data.w, 48);
  assert.equal(els.find((e) => e.data.id === "e0").data.label, "x");
  assert.equal(els.find((e) => e.data.id === "e2").data.label, undefined);
});

test("classes mark aux, parameter, replaced and hidden nodes", () => {
  const els = buildElements(GRAPH, STATES, new Set([2]), true);
  const cls = (id) => els.find((e) => e.data.id === id).classes.split(/\s+/).filter(Boolean);
  assert.deepEqual(cls("1").sort(), ["cnb-aux", "cnb-hidden", "cnb-param"]);
  assert.deepEqual(cls("3").sort(), ["cnb-aux", "cnb-hidden"]);
  assert.deepEqual(cls("2"), ["cnb-replaced"]);
  assert.deepEqual(cls("0"), []);
});

test("main and aux parts split the graph without overlap or loss", () => {
  const main = buildElements(GRAPH, STATES, new Set(), true, "main");
  const aux = buildElements(GRAPH, STATES, new Set(), false, "aux");
  assert.deepEqual(ids(main), ["0", "2", "e1"]);
  assert.deepEqual(ids(aux), ["1", "3", "e0", "e2"]);
  assert.deepEqual(ids([...main, ...aux]), ids(buildElements(GRAPH, STATES, new Set(), false)));
});
