import { test } from "node:test";
import assert from "node:assert/strict";
import { DETAIL_FIELDS, detailValues } from "../src/details.js";

const FIELDS = [
  "node_name", "node_id", "status", "executor", "start_time", "end_time", "duration",
  "inputs", "output", "location", "stdout", "stderr", "error", "reason", "source",
];

test("the pane has exactly the fields of the DOM contract", () => {
  assert.deepEqual(new Set(DETAIL_FIELDS.map(([f]) => f)), new Set(FIELDS));
});

test("before Python answers, the pane shows what the view knows", () => {
  const { values, loading } = detailValues(3, null, { label: "add", state: "running" });
  assert.equal(loading, true);
  assert.equal(values.node_name, "add");
  assert.equal(values.node_id, "3");
  assert.equal(values.status, "running");
  assert.equal(values.output, "");
});

test("details for another node are not shown for the selected one", () => {
  const stale = { node_id: 1, node_name: "other", output: "42" };
  const { values, loading } = detailValues(3, stale, { label: "add", state: "pending" });
  assert.equal(loading, true);
  assert.equal(values.node_name, "add");
  assert.equal(values.output, "");
});

test("Python's details fill every field, null reads as empty", () => {
  const d = { node_id: 3, node_name: "add", status: "completed", output: "5", error: null, duration: "0.1 s" };
  const { values, loading } = detailValues(3, d, { label: "add", state: "completed" });
  assert.equal(loading, false);
  assert.equal(values.output, "5");
  assert.equal(values.error, "");
  assert.equal(values.duration, "0.1 s");
  assert.equal(values.node_id, "3");
});
