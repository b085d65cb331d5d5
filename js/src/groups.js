// Pure helpers for groups, progress and search: nothing here touches the DOM
// or cytoscape, so `node --test` can load it.

import { STATES } from "./states.js";

/** Node ids of `[start, step, count]` runs (Python's grouping.encode_runs). */
export function decodeRuns(runs) {
  let total = 0;
  for (const [, , count] of runs) total += count;
  const out = new Int32Array(total);
  let k = 0;
  for (const [start, step, count] of runs) {
    for (let i = 0; i < count; i++) out[k++] = start + step * i;
  }
  return out;
}

/**
 * Members per state of the node ids in `members` (a typed array), leaving out
 * the positions `skipFirst..skipLast` (the page drawn node by node).
 */
export function countMembers(members, encoded, codes, skipFirst = -1, skipLast = -2) {
  const counts = {};
  for (const s of STATES) counts[s] = 0;
  for (let k = 0; k < members.length; k++) {
    if (k >= skipFirst && k <= skipLast) continue;
    const state = codes[encoded[members[k]]] || "pending";
    counts[state] += 1;
  }
  return counts;
}

/** The state a group is coloured by: the first present of failed, running, pending, ... */
export function groupState(counts) {
  for (const s of ["failed", "running", "pending", "cancelled", "completed", "reused"]) {
    if (counts[s]) return s;
  }
  return "pending";
}

const fmt = (n) => n.toLocaleString("en-US");

/** "4,998 done, 2 running" (the same words as the static SVG). */
export function stateWords(counts) {
  const parts = [];
  const done = (counts.completed || 0) + (counts.reused || 0);
  if (done) parts.push(`${fmt(done)} done`);
  for (const s of ["running", "failed", "cancelled", "pending"]) {
    if (counts[s]) parts.push(`${fmt(counts[s])} ${s}`);
  }
  return parts.join(", ");
}

/** "featurize ×5,000: 4,998 done, 2 running" */
export function groupSummary(label, count, counts) {
  return `${label} ×${fmt(count)}: ${stateWords(counts)}`;
}

/** The two-line label drawn in a group node. */
export function groupLabel(label, count, counts) {
  return `${label} ×${fmt(count)}\n${stateWords(counts)}`;
}

const BAR_ORDER = ["completed", "reused", "running", "failed", "cancelled", "pending"];

/** A stacked bar of states as an SVG data URI (a group node's background image). */
export function barImage(counts, palette) {
  let total = 0;
  for (const s of BAR_ORDER) total += counts[s] || 0;
  const parts = [];
  let x = 0;
  if (total) {
    for (const s of BAR_ORDER) {
      const n = counts[s] || 0;
      if (!n) continue;
      const w = (100 * n) / total;
      parts.push(`<rect x="${x.toFixed(3)}" width="${(w + 0.01).toFixed(3)}" height="10" fill="${palette[s]}"/>`);
      x += w;
    }
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 10" preserveAspectRatio="none">`
    + `<rect width="100" height="10" fill="${palette.pending}" opacity="0.35"/>${parts.join("")}</svg>`;
  return "data:image/svg+xml;utf8," + encodeURIComponent(svg);
}

/**
 * Electron progress: electrons are the nodes whose kind code is "e" or "s"
 * (no parameters, getters, lists, dicts or postprocess).
 * @param {string} encoded states
 * @param {Object<string,string>} codes
 * @param {Int32Array} electrons indices of the electron nodes
 */
export function progress(encoded, codes, electrons) {
  const counts = countMembers(electrons, encoded, codes);
  const done = counts.completed + counts.reused;
  return { ...counts, done, total: electrons.length };
}

/** Indices of the electron nodes in Python's kinds string. */
export function electronIndices(kinds) {
  let n = 0;
  for (let i = 0; i < kinds.length; i++) if (kinds[i] === "e" || kinds[i] === "s") n++;
  const out = new Int32Array(n);
  let k = 0;
  for (let i = 0; i < kinds.length; i++) if (kinds[i] === "e" || kinds[i] === "s") out[k++] = i;
  return out;
}

/** "4,998 / 5,000 electrons done · 1 failed · 1 running" */
export function progressText(p) {
  let text = `${fmt(p.done)} / ${fmt(p.total)} electrons done`;
  for (const s of ["failed", "running", "cancelled"]) if (p[s]) text += ` · ${fmt(p[s])} ${s}`;
  return text;
}

/** "850 ms", "12.3 s", "4 min 05 s", "1 h 02 min" */
export function formatElapsed(ms) {
  if (!(ms >= 0)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** A node time in the browser's local time zone: "14:03:12.345", with the date when not today. */
export function formatLocalTime(ms, now = new Date()) {
  if (!ms) return "";
  const d = new Date(ms);
  const time = d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay ? time : `${d.toLocaleDateString()} ${time}`;
}

/**
 * Items matching a search: labels containing the query (case-insensitive),
 * exact matches first.  A number also matches the item of that node id.
 * @returns {number[]} item indices
 */
export function searchItems(query, labels, ids) {
  const q = query.trim().toLowerCase().replace(/^#/, "");
  if (!q) return [];
  const exact = [];
  const partial = [];
  for (let k = 0; k < labels.length; k++) {
    const label = String(labels[k]).toLowerCase();
    if (label === q || ids[k] === q) exact.push(k);
    else if (label.includes(q)) partial.push(k);
  }
  return exact.concat(partial);
}

/** Which group holds node `nodeId`, and its position in the group (or null). */
export function findInGroups(nodeId, groupMembers) {
  for (const [gid, members] of groupMembers) {
    for (let k = 0; k < members.length; k++) if (members[k] === nodeId) return { gid, index: k };
  }
  return null;
}
