import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeRuns, countMembers, groupState, groupSummary, groupLabel, barImage, progress,
  electronIndices, progressText, formatElapsed, formatLocalTime, searchItems, findInGroups,
} from "../src/groups.js";

const CODES = { p: "pending", r: "running", c: "completed", u: "reused", f: "failed", x: "cancelled" };
const PALETTE = { pending: "#aaaaaa", running: "#ffaa00", completed: "#00aa00", reused: "#7700ff", failed: "#ff0000", cancelled: "#666666" };

test("runs decode to the node ids Python encoded", () => {
  assert.deepEqual([...decodeRuns([[0, 2, 3], [10, 1, 2], [7, 1, 1]])], [0, 2, 4, 10, 11, 7]);
  assert.equal(decodeRuns([]).length, 0);
});

test("members are counted per state, leaving out the page drawn node by node", () => {
  const members = Int32Array.from([0, 2, 4, 6]);
  const states = "cprpfpc";
  assert.deepEqual(countMembers(members, states, CODES),
    { pending: 0, running: 1, completed: 2, reused: 0, failed: 1, cancelled: 0 });
  const rest = countMembers(members, states, CODES, 0, 1); // members 0 and 2 shown
  assert.equal(rest.completed, 1);
  assert.equal(rest.failed, 1);
  assert.equal(rest.running, 0);
});

test("a group reads as its worst state and summarises itself in words", () => {
  const counts = { pending: 0, running: 2, completed: 4990, reused: 8, failed: 0, cancelled: 0 };
  assert.equal(groupState(counts), "running");
  assert.equal(groupState({ ...counts, failed: 1 }), "failed");
  assert.equal(groupState({ completed: 3 }), "completed");
  assert.equal(groupSummary("featurize", 5000, counts), "featurize ×5,000: 4,998 done, 2 running");
  assert.equal(groupLabel("featurize", 5000, counts), "featurize ×5,000\n4,998 done, 2 running");
});

test("the stacked bar is an SVG with one rectangle per present state", () => {
  const uri = barImage({ completed: 3, running: 1, pending: 0 }, PALETTE);
  assert.ok(uri.startsWith("data:image/svg+xml;utf8,"));
  const svg = decodeURIComponent(uri.slice(uri.indexOf(",") + 1));
  assert.equal((svg.match(/<rect x=/g) || []).length, 2);
  assert.ok(svg.includes('width="75.010"') && svg.includes("#00aa00") && svg.includes("#ffaa00"));
});

test("progress counts electrons only, not parameters or bookkeeping", () => {
  const kinds = "epebeps";
  const electrons = electronIndices(kinds);
  assert.deepEqual([...electrons], [0, 2, 4, 6]);
  const p = progress("cpcprpf", CODES, electrons);
  assert.equal(p.total, 4);
  assert.equal(p.done, 2);
  assert.equal(progressText(p), "2 / 4 electrons done · 1 failed · 1 running");
  assert.equal(progressText(progress("ccccccr", CODES, electrons)), "3 / 4 electrons done · 1 running");
});

test("elapsed time and local times read naturally", () => {
  assert.equal(formatElapsed(850), "850 ms");
  assert.equal(formatElapsed(12340), "12.3 s");
  assert.equal(formatElapsed(245000), "4 min 05 s");
  assert.equal(formatElapsed(3720000), "1 h 02 min");
  const ms = Date.UTC(2026, 0, 2, 3, 4, 5, 67);
  const d = new Date(ms);
  const expected = d.toLocaleTimeString(undefined, { hour12: false }) + ".067";
  assert.equal(formatLocalTime(ms, d), expected);
  assert.equal(formatLocalTime(ms, new Date(ms + 3 * 86400000)), `${d.toLocaleDateString()} ${expected}`);
  assert.equal(formatLocalTime(0), "");
});

test("search finds exact labels first, then substrings, and node numbers", () => {
  const labels = ["evaluate #1", "evaluate", "fit(c=1)", "load"];
  const ids = ["3", "4", "7", "9"];
  assert.deepEqual(searchItems("EVALUATE", labels, ids), [1, 0]);
  assert.deepEqual(searchItems("#7", labels, ids), [2]);
  assert.deepEqual(searchItems("  ", labels, ids), []);
  assert.deepEqual(searchItems("nothing", labels, ids), []);
});

test("a node inside a group is found with its position", () => {
  const groups = new Map([["g0", Int32Array.from([10, 12, 14])], ["g1", Int32Array.from([11, 13])]]);
  assert.deepEqual(findInGroups(13, groups), { gid: "g1", index: 1 });
  assert.equal(findInGroups(99, groups), null);
});
