// Pure helpers shared by the view and its unit tests: decoding the compact
// state string Python sends, finding what changed, counting for the legend.
// Nothing here touches the DOM or cytoscape, so `node --test` can load it.

/** Node states in legend order. */
export const STATES = Object.freeze([
  "pending",
  "running",
  "completed",
  "reused",
  "failed",
  "cancelled",
]);

/**
 * Decode Python's state string (one character per node) into state names.
 *
 * Python sends one character per node instead of a list of names: a 10,000
 * node graph then costs 10 KB per update instead of ~110 KB.
 *
 * @param {string} encoded one code character per node
 * @param {Object<string,string>} codes code character -> state name
 * @returns {string[]} state name per node; unknown codes read as "pending"
 */
export function decodeStates(encoded, codes) {
  const out = new Array(encoded.length);
  for (let i = 0; i < encoded.length; i++) {
    out[i] = codes[encoded[i]] || "pending";
  }
  return out;
}

/**
 * Indices whose state differs between two encoded state strings.
 *
 * Comparing the encoded strings keeps the hot path allocation-free; only the
 * changed nodes are restyled, so recolouring never touches the layout.
 *
 * @param {string|null} prev previous encoded states (null: everything changed)
 * @param {string} next new encoded states
 * @returns {number[]}
 */
export function diffStates(prev, next) {
  const changed = [];
  if (prev === null || prev === undefined || prev.length !== next.length) {
    for (let i = 0; i < next.length; i++) changed.push(i);
    return changed;
  }
  for (let i = 0; i < next.length; i++) {
    if (prev.charCodeAt(i) !== next.charCodeAt(i)) changed.push(i);
  }
  return changed;
}

/**
 * Count nodes per state for the legend.
 *
 * Parameter nodes are left out: they are inputs, complete from the start,
 * and counting them would drown the tasks in the "completed" figure.
 *
 * @param {string} encoded encoded states
 * @param {Object<string,string>} codes code character -> state name
 * @param {Set<number>|null} excluded node indices not counted
 * @returns {Object<string,number>} a count for every state in STATES
 */
export function countStates(encoded, codes, excluded = null) {
  const counts = {};
  for (const s of STATES) counts[s] = 0;
  for (let i = 0; i < encoded.length; i++) {
    if (excluded && excluded.has(i)) continue;
    const state = codes[encoded[i]] || "pending";
    counts[state] = (counts[state] || 0) + 1;
  }
  return counts;
}

/**
 * The legend's text for one state, e.g. "completed 3".
 * @param {string} state
 * @param {number} count
 */
export function legendText(state, count) {
  return `${state} ${count}`;
}
