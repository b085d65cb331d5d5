import { test } from "node:test";
import assert from "node:assert/strict";
import { STATES, decodeStates, diffStates, countStates, legendText } from "../src/states.js";

const CODES = { p: "pending", r: "running", c: "completed", u: "reused", f: "failed", x: "cancelled" };

test("decodeStates maps each character to its state", () => {
  assert.deepEqual(decodeStates("prcufx", CODES), [
    "pending", "running", "completed", "reused", "failed", "cancelled",
  ]);
});

test("decodeStates reads unknown codes as pending", () => {
  assert.deepEqual(decodeStates("c?", CODES), ["completed", "pending"]);
  assert.deepEqual(decodeStates("", CODES), []);
});

test("diffStates returns only the indices that changed", () => {
  assert.deepEqual(diffStates("pppp", "prpc"), [1, 3]);
  assert.deepEqual(diffStates("cccc", "cccc"), []);
});

test("diffStates treats a missing or resized previous state as all changed", () => {
  assert.deepEqual(diffStates(null, "pc"), [0, 1]);
  assert.deepEqual(diffStates("p", "pcc"), [0, 1, 2]);
});

test("countStates counts every state, zero included, skipping excluded nodes", () => {
  const counts = countStates("ccprfu", CODES, new Set([0]));
  assert.deepEqual(counts, { pending: 1, running: 1, completed: 1, reused: 1, failed: 1, cancelled: 0 });
  assert.deepEqual(Object.keys(counts), [...STATES]);
});

test("countStates without exclusions counts all nodes", () => {
  const counts = countStates("ccc", CODES);
  assert.equal(counts.completed, 3);
});

test("legendText is the state then the count", () => {
  assert.equal(legendText("completed", 3), "completed 3");
});
