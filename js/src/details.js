import { formatLocalTime } from "./groups.js";

// The details pane's fields: their order, labels and how values read.

/** Fields of the details pane, in display order: [data-field, label]. */
export const DETAIL_FIELDS = Object.freeze([
  ["node_name", "Name"],
  ["node_id", "Node id"],
  ["status", "Status"],
  ["executor", "Executor"],
  ["start_time", "Start"],
  ["end_time", "End"],
  ["duration", "Duration"],
  ["reason", "Reuse"],
  ["inputs", "Inputs"],
  ["output", "Output"],
  ["location", "Lives in"],
  ["stdout", "stdout"],
  ["stderr", "stderr"],
  ["error", "Error"],
  ["source", "Source"],
]);

/** Fields shown as preformatted blocks (multi-line text, code). */
export const BLOCK_FIELDS = new Set(["inputs", "output", "stdout", "stderr", "error", "source"]);

/**
 * Values for every field of the pane.
 *
 * Until Python's answer for the clicked node arrives, the pane shows what
 * the browser already knows (name, id, state) so a click never looks dead.
 *
 * @param {number} nodeId the selected node
 * @param {object|null} details Python's details (may be for another node)
 * @param {{label: string, state: string}} local what the view knows
 * @param {Date} now today, for whether times show their date
 * @returns {{values: Object<string,string>, loading: boolean}}
 */
export function detailValues(nodeId, details, local, now = new Date()) {
  const values = {};
  for (const [field] of DETAIL_FIELDS) values[field] = "";
  const fresh = details && details.node_id === nodeId;
  if (fresh) {
    for (const [field] of DETAIL_FIELDS) {
      const v = details[field];
      values[field] = v === null || v === undefined ? "" : String(v);
    }
    // Python sends epoch milliseconds: shown in the browser's local time.
    if (details.start_ms) values.start_time = formatLocalTime(details.start_ms, now);
    if (details.end_ms) values.end_time = formatLocalTime(details.end_ms, now);
  } else {
    values.node_name = local.label;
    values.node_id = String(nodeId);
    values.status = local.state;
  }
  return { values, loading: !fresh };
}
