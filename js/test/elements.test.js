import { test } from "node:test";
import assert from "node:assert/strict";
import { buildElements } from "../src/elements.js";

// Items: 0 electron "f" (node 0) <- 1 parameter (node 1); 0 -> 2 electron "g"
// (node 2) -> 3 postprocess chip (node 5); group g0 (members 3, 4) -> item 2.
const GRAPH = {
  ids: ["0", "1", "2", "5", "g0"],
  roles: "epeag",
  labels: ["f", "1", "g", "result", "h"],
  x: [10, 10, 10, 10, 90], y: [40, 10, 80, 120, 40], w: [48, 14, 48, 50, 170], h: [30, 14, 30, 22, 54],
  edges: [1, 0, 0, 2, 2, 3, 4, 2],
  edge_labels: ["x", "y", "", ""],
};
const STATES = ["completed", "completed", "running", "pending", "failed"];

const ids = (els) => els.map((e) => e.data.id).sort();

test("all elements carry position, size, label, state and node id", () => {
  const els = buildElements(GRAPH, STATES, new Set(), false);
  assert.deepEqual(ids(els), ["0", "1", "2", "5", "e0", "e1", "e2", "e3", "g0"]);
  const g = els.find((e) => e.data.id === "2");
  assert.deepEqual(g.position, { x: 10, y: 80 });
  assert.equal(g.data.state, "running");
  assert.equal(g.data.w, 48);
  assert.equal(g.data.node, 2);
  assert.equal(els.find((e) => e.data.id === "5").data.node, 5);
  assert.equal(els.find((e) => e.data.id === "e0").data.label, "x");
  assert.equal(els.find((e) => e.data.id === "e2").data.label, undefined);
  assert.equal(els.find((e) => e.data.id === "e3").data.source, "g0");
});

test("a group item is a group node with its extra data", () => {
  const els = buildElements(GRAPH, STATES, new Set(), false, "all", { 4: { gid: "g0", count: 2, summary: "h ×2: 2 failed" } });
  const g = els.find((e) => e.data.id === "g0");
  assert.equal(g.data.group, true);
  assert.equal(g.data.node, -1);
  assert.equal(g.data.summary, "h ×2: 2 failed");
  assert.ok(g.classes.includes("cnb-group"));
});

test("classes mark roles, aux, parameter, replaced and hidden nodes", () => {
  const els = buildElements(GRAPH, STATES, new Set([2]), true);
  const cls = (id) => els.find((e) => e.data.id === id).classes.split(/\s+/).filter(Boolean).sort();
  assert.deepEqual(cls("1"), ["cnb-aux", "cnb-hidden", "cnb-param", "cnb-role-p"]);
  assert.deepEqual(cls("5"), ["cnb-aux", "cnb-hidden", "cnb-role-a"]);
  assert.deepEqual(cls("2"), ["cnb-replaced", "cnb-role-e"]);
  assert.deepEqual(cls("0"), ["cnb-role-e"]);
  // edges to hidden parameters hide with them (they are invisible, not removed)
  assert.deepEqual(cls("e0"), ["cnb-aux", "cnb-hidden"]);
  assert.equal(els.find((e) => e.data.id === "e1").classes, undefined);
});

test("main and aux parts split the graph without overlap or loss", () => {
  const main = buildElements(GRAPH, STATES, new Set(), true, "main");
  const aux = buildElements(GRAPH, STATES, new Set(), false, "aux");
  assert.deepEqual(ids(main), ["0", "2", "e1", "e3", "g0"]);
  assert.deepEqual(ids(aux), ["1", "5", "e0", "e2"]);
  assert.deepEqual(ids([...main, ...aux]), ids(buildElements(GRAPH, STATES, new Set(), false)));
});
