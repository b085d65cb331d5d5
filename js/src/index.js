// The LatticeGraph view: cytoscape draws the items (nodes and groups) at the
// positions Python computed; state changes only restyle them, never lay them
// out again.
//
// Model traits read: dispatch_id, status, started_at, ended_at, graph, states,
// replaced, failures, cancel_requested, details, hide_params, expanded. Written: selected,
// hide_params, expanded. Custom messages sent: {event: "open_panel"},
// {event: "cancel"}. The DOM contract is documented in
// covalent_nb/notebook/graph_widget.py.

import cytoscape from "cytoscape";
import css from "./style.css";
import { STATES, decodeStates, diffStates, countStates, legendText } from "./states.js";
import { stylesheet, themeFrom, fitViewport } from "./style.js";
import { DETAIL_FIELDS, BLOCK_FIELDS, detailValues } from "./details.js";
import { buildElements } from "./elements.js";
import {
  decodeRuns, countMembers, groupState, groupSummary, groupLabel, barImage, progress,
  electronIndices, progressText, formatElapsed, searchItems, findInGroups,
} from "./groups.js";

// Above this many drawn items, draw cheaply: no arrows, textures while panning.
const LARGE_GRAPH = 2000;
// The first view never shows labels smaller than this zoom allows (12 px
// labels at zoom 1); a bigger graph starts at its beginning, scrollable.
const MIN_INITIAL_ZOOM = 1.0;
const MAX_INITIAL_ZOOM = 1.25;
// The canvas is as tall as the graph at the first view's zoom, within these.
const MIN_CANVAS = 200;
const MAX_CANVAS = 640;
// Below this zoom a layer gap is a few pixels and edges are a grey smear;
// hiding them saves a third of every redraw of a 10,000-node graph.
const FAR_ZOOM = 0.06;
const ENDED = new Set(["COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED", "POSTPROCESSING_FAILED", "PENDING_POSTPROCESSING_FAILED"]);
const FAILURES_SHOWN = 20;
// Elements added per idle slice when the hidden parameters are created in the background.
const AUX_SLICE = 400;

function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

const cssString = (s) => `"${String(s).replace(/["\\]/g, "\\$&")}"`;

// Where the widget renders, hide the static picture of its dispatch in the
// same output area (graph_widget.show_live puts it there for nbconvert & co).
function fallbackRule(dispatchId) {
  const cls = "cnb-static-" + String(dispatchId).replace(/[^A-Za-z0-9_-]/g, "");
  const graph = `.cnb-graph[data-dispatch-id=${cssString(dispatchId)}]`;
  return `.jp-OutputArea:has(${graph}) .jp-OutputArea-child:has(.${cls}),`
    + ` .output:has(${graph}) .output_area:has(.${cls}) { display: none !important; }`;
}

function render({ model, el }) {
  const cleanups = [];
  const listen = (name, fn) => {
    model.on(name, fn);
    cleanups.push(() => model.off(name, fn));
  };

  const root = h("div", { class: "cnb-graph" });
  root.dataset.dispatchId = model.get("dispatch_id");
  const fallbackStyle = h("style", { text: fallbackRule(model.get("dispatch_id")) });
  root.append(h("style", { text: css }), fallbackStyle);

  // Header: status, id, elapsed time, progress, Cancel; search.
  const status = h("span", { class: "cnb-status" });
  const idText = h("code", { class: "cnb-dispatch-id", title: "dispatch id" });
  const copyId = h("button", { class: "cnb-copy-id", title: "Copy the dispatch id", text: "copy" });
  const elapsed = h("span", { class: "cnb-elapsed", title: "elapsed time" });
  const progressBar = h("span", { class: "cnb-bar" });
  const progressLabel = h("span", { class: "cnb-progress-text" });
  const progressEl = h("span", { class: "cnb-progress" }, [progressBar, progressLabel]);
  const cancel = h("button", { class: "cnb-cancel", title: "Cancel the dispatch (ct.cancel): tasks not started are cancelled, running ones finish", text: "Cancel" });
  const search = h("input", { type: "search", class: "cnb-search", placeholder: "find a node…", "aria-label": "find a node by name" });
  const searchStatus = h("span", { class: "cnb-search-status" });
  const header = h("div", { class: "cnb-header" }, [
    h("span", { class: "cnb-block" }, [status, idText, copyId, elapsed]),
    h("span", { class: "cnb-block cnb-grow" }, [progressEl, cancel]),
    h("span", { class: "cnb-block" }, [search, searchStatus]),
  ]);
  const functionsEl = h("div", { class: "cnb-functions" });
  const failuresEl = h("div", { class: "cnb-failures", role: "alert" });

  // Toolbar: legend, controls.
  const legend = h("div", { class: "cnb-legend" });
  const legendItems = {};
  const legendCounts = {};
  // Python's palette (states.py), sent with the graph: the one source of the colours.
  let palette = model.get("graph").palette;
  for (const state of STATES) {
    const swatch = h("span", { class: "cnb-swatch" });
    swatch.style.background = palette[state];
    const count = h("span", { class: "cnb-legend-count", text: "0" });
    const item = h("span", { class: "cnb-legend-item", "data-state": state, "data-count": "0" }, [
      swatch,
      h("span", { class: "cnb-legend-name", text: state }),
      " ",
      count,
    ]);
    item.title = legendText(state, 0);
    legendItems[state] = item;
    legendCounts[state] = count;
    legend.append(item);
  }
  const replacedSwatch = h("span", { class: "cnb-swatch" });
  replacedSwatch.style.border = `3px double ${palette.replaced}`;
  const replacedCount = h("span", { class: "cnb-legend-count", text: "0" });
  const replacedItem = h(
    "span",
    { class: "cnb-legend-item cnb-legend-replaced", "data-marker": "replaced", "data-count": "0" },
    [replacedSwatch, h("span", { class: "cnb-legend-name", text: "replaced" }), " ", replacedCount],
  );
  legend.append(replacedItem);

  const hideBox = h("input", { type: "checkbox", class: "cnb-toggle-params" });
  const hideLabel = h("label", { title: "Hide parameter and postprocess nodes" }, [hideBox, "hide parameters"]);
  const fitButton = h("button", { class: "cnb-fit", title: "Fit the graph to the view", text: "Fit" });
  const zoomIn = h("button", { class: "cnb-zoom-in", title: "Zoom in", text: "+" });
  const zoomOut = h("button", { class: "cnb-zoom-out", title: "Zoom out", text: "−" });
  const redispatch = h("button", { class: "cnb-redispatch", text: "Redispatch…" });
  const toolbar = h("div", { class: "cnb-toolbar" }, [
    legend, h("span", { class: "cnb-spacer" }),
    h("span", { class: "cnb-block cnb-controls" }, [hideLabel, zoomOut, zoomIn, fitButton, redispatch]),
  ]);
  const groupbar = h("div", { class: "cnb-groupbar" });

  // Body: the canvas, with the details pane laid over its right side.
  const canvas = h("div", { class: "cnb-canvas" });
  const detailsTitle = h("strong", { text: "" });
  const closeDetails = h("button", { class: "cnb-details-close", title: "Close", text: "×" });
  const detailsList = h("dl");
  const fieldEls = {};
  const fieldRows = {};
  for (const [field, label] of DETAIL_FIELDS) {
    const value = BLOCK_FIELDS.has(field) ? h("pre", { "data-field": field }) : h("span", { "data-field": field });
    const dt = h("dt", { text: label });
    const dd = h("dd", {}, [value]);
    fieldEls[field] = value;
    fieldRows[field] = [dt, dd];
    detailsList.append(dt, dd);
  }
  const details = h("div", { class: "cnb-details", hidden: "" }, [
    h("div", { class: "cnb-details-head" }, [detailsTitle, closeDetails]),
    detailsList,
  ]);
  const body = h("div", { class: "cnb-body" }, [canvas, details]);
  root.append(header, functionsEl, failuresEl, toolbar, groupbar, body);
  el.append(root);

  // Graph state.
  let graph = model.get("graph");
  let codes = graph.codes || {};
  let encoded = model.get("states") || "";
  let replaced = new Set(model.get("replaced") || []);
  let electrons = electronIndices(graph.kinds || "");
  let uncounted = null;
  let groupMembers = new Map();
  let functionMembers = [];
  let large = false;
  let auxCreated = true;

  function prepare() {
    codes = graph.codes || {};
    palette = graph.palette;
    electrons = electronIndices(graph.kinds || "");
    const kinds = graph.kinds || "";
    // the legend counts electrons (and sublattices): the tasks the user wrote, not bookkeeping
    uncounted = new Set();
    for (let i = 0; i < kinds.length; i++) if (kinds[i] !== "e" && kinds[i] !== "s") uncounted.add(i);
    groupMembers = new Map((graph.groups || []).map((g) => [g.id, decodeRuns(g.runs)]));
    functionMembers = (graph.functions || []).map((f) => ({ ...f, members: decodeRuns(f.runs) }));
    large = graph.ids.length > LARGE_GRAPH;
  }
  prepare();

  // Per item: its state; per group item: its counts, summary and bar.
  function groupInfo(g) {
    const members = groupMembers.get(g.id);
    const [first, last] = g.shown || [-1, -2];
    const counts = countMembers(members, encoded, codes, first, last);
    const shownCount = g.shown ? last - first + 1 : 0;
    return {
      counts,
      state: groupState(counts),
      count: g.count - shownCount,
      summary: groupSummary(g.label, g.count, counts),
      label: groupLabel(g.shown ? `${g.label} (rest)` : g.label, g.count - shownCount, counts),
      bar: barImage(counts, palette),
    };
  }
  function itemStates(states) {
    const out = new Array(graph.ids.length);
    for (let k = 0; k < graph.ids.length; k++) {
      out[k] = graph.roles[k] === "g" ? "pending" : states[Number(graph.ids[k])];
    }
    const groupData = {};
    for (const g of graph.groups || []) {
      if (g.item < 0) continue;
      const info = groupInfo(g);
      out[g.item] = info.state;
      groupData[g.item] = { gid: g.id, count: g.count, counts: info.counts, summary: info.summary, bar: info.bar, label: info.label };
    }
    return { out, groupData };
  }
  function elements(part) {
    const { out, groupData } = itemStates(decodeStates(encoded, codes));
    return buildElements(graph, out, replaced, model.get("hide_params"), part, groupData);
  }

  const readTheme = () => themeFrom((name) => getComputedStyle(root).getPropertyValue(name));
  // Hidden aux nodes of a big graph are created when first shown.
  auxCreated = !(large && model.get("hide_params"));
  const cy = cytoscape({
    container: canvas,
    elements: elements(auxCreated ? "all" : "main"),
    style: stylesheet({ palette, theme: readTheme(), large }),
    layout: { name: "preset" },
    // Wide map-reduce graphs need very low zoom to fit.
    minZoom: 0.0005,
    maxZoom: 4,
    boxSelectionEnabled: false,
    autoungrabify: true,
    autounselectify: true,
    textureOnViewport: large,
    hideEdgesOnViewport: large,
    motionBlur: false,
    pixelRatio: large ? 1 : "auto",
  });
  root.__cy = cy;
  cleanups.push(() => cy.destroy());

  // Node elements by node id, group elements by group id.  Elements are
  // their own one-element collections; getElementById would build 10,000
  // new collections.
  let nodes = [];
  let groupEls = new Map();
  const indexNodes = () => {
    nodes = new Array(graph.n || 0);
    groupEls = new Map();
    cy.nodes().forEach((n) => {
      const d = n.data();
      if (d.group) groupEls.set(d.gid, n);
      else nodes[d.node] = n;
    });
  };
  indexNodes();

  let far = false;
  function updateFar() {
    const now = cy.zoom() < FAR_ZOOM;
    if (now === far) return;
    far = now;
    cy.batch(() => (far ? cy.edges().addClass("cnb-far") : cy.edges().removeClass("cnb-far")));
  }
  cy.on("zoom", updateFar);

  // -- header ----------------------------------------------------------------------
  function updateLegend() {
    const counts = countStates(encoded, codes, uncounted);
    for (const state of STATES) {
      const n = counts[state] || 0;
      legendCounts[state].textContent = String(n);
      legendItems[state].dataset.count = String(n);
      legendItems[state].title = legendText(state, n);
    }
    replacedCount.textContent = String(replaced.size);
    replacedItem.dataset.count = String(replaced.size);
    replacedItem.hidden = replaced.size === 0;
  }

  const functionRows = new Map();
  function buildFunctions() {
    functionsEl.textContent = "";
    functionRows.clear();
    for (const f of functionMembers) {
      const bar = h("span", { class: "cnb-bar" });
      const text = h("span", { class: "cnb-function-count" });
      const row = h("span", { class: "cnb-function", "data-function": f.name, title: f.name }, [
        h("span", { class: "cnb-function-name", text: f.name }), bar, text,
      ]);
      functionRows.set(f.name, { row, bar, text, f });
      functionsEl.append(row);
    }
    functionsEl.hidden = functionMembers.length === 0;
  }
  function fillBar(bar, counts, total) {
    const parts = [];
    let x = 0;
    for (const s of ["completed", "reused", "running", "failed", "cancelled"]) {
      const n = counts[s] || 0;
      if (!n || !total) continue;
      const w = (100 * n) / total;
      parts.push(`${palette[s]} ${x}% ${x + w}%`);
      x += w;
    }
    parts.push(`transparent ${x}% 100%`);
    bar.style.background = `linear-gradient(to right, ${parts.join(", ")})`;
  }
  function updateProgress() {
    const p = progress(encoded, codes, electrons);
    progressLabel.textContent = progressText(p);
    progressEl.dataset.done = String(p.done);
    progressEl.dataset.total = String(p.total);
    fillBar(progressBar, p, p.total);
    for (const { row, bar, text, f } of functionRows.values()) {
      const c = countMembers(f.members, encoded, codes);
      const done = c.completed + c.reused;
      text.textContent = `${done.toLocaleString("en-US")}/${f.count.toLocaleString("en-US")}`;
      row.dataset.done = String(done);
      row.dataset.total = String(f.count);
      fillBar(bar, c, f.count);
    }
  }

  function isRunning() {
    const s = model.get("status") || "";
    return s !== "" && !ENDED.has(s);
  }
  let ticker = null;
  function updateElapsed() {
    const start = model.get("started_at") || 0;
    const end = model.get("ended_at") || 0;
    if (!start) {
      elapsed.textContent = "";
      return;
    }
    const to = end || (isRunning() ? Date.now() : start);
    elapsed.textContent = formatElapsed(to - start);
    elapsed.dataset.ms = String(Math.round(to - start));
  }
  function updateStatus() {
    const s = model.get("status") || "";
    status.textContent = s;
    status.dataset.status = s;
    const running = isRunning();
    cancel.hidden = !running;
    const requested = Boolean(model.get("cancel_requested"));
    cancel.dataset.requested = String(requested);
    if (requested && running) {
      cancel.disabled = true;
      cancel.textContent = "Cancelling…";
      cancel.title = "Cancelled: tasks not started will not start; running tasks finish first";
    } else if (!running) {
      cancel.disabled = false;
      cancel.textContent = "Cancel";
    }
    if (running && ticker === null) ticker = setInterval(updateElapsed, 500);
    if (!running && ticker !== null) {
      clearInterval(ticker);
      ticker = null;
    }
    updateElapsed();
  }
  cleanups.push(() => ticker !== null && clearInterval(ticker));
  idText.textContent = model.get("dispatch_id");
  copyId.addEventListener("click", async () => {
    const id = model.get("dispatch_id");
    try {
      await navigator.clipboard.writeText(id);
      copyId.textContent = "copied";
    } catch (e) {
      // No clipboard permission (plain http, headless): select the text instead.
      const range = document.createRange();
      range.selectNodeContents(idText);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      copyId.textContent = "selected";
    }
    setTimeout(() => (copyId.textContent = "copy"), 1500);
  });
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
    model.send({ event: "cancel" });
  });

  // -- failures banner ---------------------------------------------------------------
  function updateFailures() {
    const failures = model.get("failures") || [];
    failuresEl.textContent = "";
    failuresEl.hidden = failures.length === 0;
    if (!failures.length) return;
    const failedCount = countStates(encoded, codes, uncounted).failed || failures.length;
    failuresEl.append(h("div", { class: "cnb-failures-head", text: `${failedCount.toLocaleString("en-US")} failed` }));
    for (const f of failures.slice(0, FAILURES_SHOWN)) {
      const name = h("button", { class: "cnb-failure-name", title: "Show this node", text: `${f.name} (node ${f.node_id})` });
      name.addEventListener("click", () => reveal(f.node_id, true));
      const trace = h("details", { class: "cnb-failure-details" }, [
        h("summary", { text: "traceback" }),
        h("pre", { class: "cnb-failure-traceback", text: f.error || "" }),
      ]);
      failuresEl.append(h("div", { class: "cnb-failure", "data-node-id": String(f.node_id) }, [
        name, h("span", { class: "cnb-failure-line", text: f.line }), trace,
      ]));
    }
    const more = failedCount - Math.min(failures.length, FAILURES_SHOWN);
    if (more > 0) {
      failuresEl.append(h("div", { class: "cnb-failures-more", text: `and ${more.toLocaleString("en-US")} more failed node(s): search them by name` }));
    }
  }

  // -- recolouring -----------------------------------------------------------------------
  function restyleGroups() {
    for (const g of graph.groups || []) {
      const el = groupEls.get(g.id);
      if (!el) continue;
      const info = groupInfo(g);
      if (info.summary !== el.data("summary")) {
        el.data({ state: info.state, counts: info.counts, summary: info.summary, bar: info.bar, label: info.label });
      }
    }
  }
  function recolour() {
    const next = model.get("states") || "";
    const changed = diffStates(encoded, next);
    encoded = next;
    if (changed.length) {
      cy.batch(() => {
        for (const i of changed) {
          if (nodes[i]) nodes[i].data("state", codes[next[i]] || "pending");
        }
        restyleGroups();
      });
    }
    updateLegend();
    updateProgress();
    if (selected >= 0 && changed.includes(selected)) showDetails();
  }

  // -- viewport -----------------------------------------------------------------------------
  // Python's layout box gives the fit without cytoscape measuring every
  // element (and its label) for a bounding box.
  const box = () => ({ x1: 0, y1: 0, x2: graph.width || 1, y2: graph.height || 1 });
  function fitAll() {
    cy.viewport(fitViewport(box(), canvas.clientWidth, canvas.clientHeight, 0));
  }
  function initialView() {
    cy.viewport(fitViewport(box(), canvas.clientWidth, canvas.clientHeight, MIN_INITIAL_ZOOM, 16, MAX_INITIAL_ZOOM));
  }
  function sizeCanvas() {
    const height = Math.max(MIN_CANVAS, Math.min(MAX_CANVAS, (graph.height || 0) * MIN_INITIAL_ZOOM + 32));
    canvas.style.height = `${Math.round(height)}px`;
  }
  sizeCanvas();
  function centreOn(el) {
    if (cy.zoom() < MIN_INITIAL_ZOOM) cy.zoom(MIN_INITIAL_ZOOM);
    // The details pane covers the canvas's right side: centre in what is left.
    const covered = details.hidden ? 0 : details.offsetWidth;
    const p = el.position();
    const z = cy.zoom();
    cy.pan({ x: (canvas.clientWidth - covered) / 2 - z * p.x, y: canvas.clientHeight / 2 - z * p.y });
  }
  let found = null;
  function mark(el) {
    if (found) found.removeClass("cnb-found");
    found = el;
    if (found) found.addClass("cnb-found");
  }

  // -- details pane ------------------------------------------------------------------------
  let selected = -1;
  function showDetails() {
    if (selected < 0 || selected >= (graph.n || 0)) {
      details.hidden = true;
      return;
    }
    const el = nodes[selected];
    const local = { label: el ? el.data("label") : String(selected), state: codes[encoded[selected]] || "pending" };
    const { values, loading } = detailValues(selected, model.get("details"), local);
    detailsTitle.textContent = values.node_name || local.label;
    for (const [field] of DETAIL_FIELDS) {
      fieldEls[field].textContent = values[field];
      const empty = values[field] === "";
      for (const part of fieldRows[field]) part.classList.toggle("cnb-row-empty", empty);
    }
    details.dataset.loading = String(loading);
    details.dataset.nodeId = String(selected);
    details.hidden = false;
  }
  function select(index) {
    if (selected >= 0 && nodes[selected]) nodes[selected].removeClass("cnb-selected");
    selected = index;
    if (selected >= 0 && nodes[selected]) nodes[selected].addClass("cnb-selected");
    showDetails();
    model.set("selected", selected);
    model.save_changes();
    // Keep the selected node clear of the pane laid over the canvas.
    if (selected >= 0 && nodes[selected] && !details.hidden) {
      const p = nodes[selected].renderedPosition();
      const limit = canvas.clientWidth - details.offsetWidth - 24;
      if (p.x > limit) cy.panBy({ x: limit - p.x - Math.min(80, limit / 4), y: 0 });
    }
  }

  // -- groups: expand, page, collapse ------------------------------------------------------
  let pendingReveal = null;
  function setExpanded(next) {
    model.set("expanded", next);
    model.save_changes();
  }
  function expand(gid, page = 0) {
    setExpanded({ ...(model.get("expanded") || {}), [gid]: page });
  }
  function collapse(gid) {
    const next = { ...(model.get("expanded") || {}) };
    delete next[gid];
    pendingReveal = { group: gid };
    setExpanded(next);
  }
  function updateGroupbar() {
    groupbar.textContent = "";
    const open = (graph.groups || []).filter((g) => g.shown);
    groupbar.hidden = open.length === 0;
    for (const g of open) {
      const [first, last] = g.shown;
      const prev = h("button", { class: "cnb-page-prev", title: "Previous page", text: "‹ prev" });
      const next = h("button", { class: "cnb-page-next", title: "Next page", text: "next ›" });
      const shut = h("button", { class: "cnb-collapse", title: "Draw as one group node again", text: "collapse" });
      prev.disabled = g.page <= 0;
      next.disabled = g.page >= g.pages - 1;
      prev.addEventListener("click", () => { pendingReveal = { page: g.id }; expand(g.id, g.page - 1); });
      next.addEventListener("click", () => { pendingReveal = { page: g.id }; expand(g.id, g.page + 1); });
      shut.addEventListener("click", () => collapse(g.id));
      groupbar.append(h("div", { class: "cnb-groupbar-item", "data-group": g.id }, [
        h("span", { text: `${g.label} ×${g.count.toLocaleString("en-US")}: nodes ${(first + 1).toLocaleString("en-US")}–${(last + 1).toLocaleString("en-US")} drawn (page ${g.page + 1} of ${g.pages})` }),
        prev, next, shut,
      ]));
    }
  }

  /** Centre node `nodeId` (expanding the page of its group when needed); select it if asked. */
  function reveal(nodeId, andSelect) {
    if (nodes[nodeId]) {
      mark(null);
      if (andSelect) select(nodeId);
      centreOn(nodes[nodeId]); // after select: the pane it opens narrows what is visible
      return true;
    }
    const where = findInGroups(nodeId, groupMembers);
    if (!where) return false;
    pendingReveal = { node: nodeId, select: andSelect };
    expand(where.gid, Math.floor(where.index / (graph.page_size || 100)));
    return true;
  }

  function afterNewGraph() {
    const target = pendingReveal;
    pendingReveal = null;
    if (!target) return;
    if (target.node !== undefined) {
      reveal(target.node, target.select);
    } else if (target.page !== undefined || target.group !== undefined) {
      const gid = target.page || target.group;
      const g = (graph.groups || []).find((x) => x.id === gid);
      if (!g) return;
      const members = groupMembers.get(gid);
      const el = g.shown ? nodes[members[g.shown[0]]] : groupEls.get(gid);
      if (el) {
        centreOn(el);
        mark(el);
      }
    }
  }

  cy.on("tap", "node", (evt) => {
    const d = evt.target.data();
    if (d.group) {
      pendingReveal = { page: d.gid };
      expand(d.gid, 0);
    } else {
      select(d.node);
    }
  });
  closeDetails.addEventListener("click", () => select(-1));
  listen("change:details", showDetails);

  // -- search -----------------------------------------------------------------------------
  let matches = [];
  let matchAt = -1;
  let lastQuery = "";
  function runSearch(step) {
    const q = search.value;
    if (q !== lastQuery) {
      lastQuery = q;
      matches = searchItems(q, graph.labels, graph.ids);
      matchAt = -1;
      // A node number inside a collapsed group.
      const num = /^#?\d+$/.test(q.trim()) ? Number(q.trim().replace("#", "")) : -1;
      if (!matches.length && num >= 0 && num < (graph.n || 0)) {
        searchStatus.textContent = reveal(num, true) ? "in a group: expanding" : "no match";
        return;
      }
    }
    if (!matches.length) {
      searchStatus.textContent = q.trim() ? "no match" : "";
      searchStatus.dataset.matches = "0";
      return;
    }
    matchAt = (matchAt + step + matches.length) % matches.length;
    const k = matches[matchAt];
    searchStatus.textContent = `${matchAt + 1} / ${matches.length}`;
    searchStatus.dataset.matches = String(matches.length);
    const el = cy.getElementById(graph.ids[k]);
    if (graph.roles[k] === "g") {
      mark(el);
    } else {
      mark(null);
      select(Number(graph.ids[k]));
    }
    centreOn(el); // after select: the pane it opens narrows what is visible
  }
  search.addEventListener("keydown", (evt) => {
    if (evt.key === "Enter") {
      evt.preventDefault();
      runSearch(evt.shiftKey ? -1 : 1);
    }
    evt.stopPropagation(); // keep Lab's notebook shortcuts out of the box
  });
  search.addEventListener("input", () => {
    if (!search.value.trim()) {
      searchStatus.textContent = "";
      mark(null);
    }
  });

  // -- controls -----------------------------------------------------------------------------
  hideBox.checked = Boolean(model.get("hide_params"));
  // The hidden aux items of a big graph (parameters, postprocess) are added in
  // small slices while the page is idle after the first paint: no long task
  // then, and "show parameters" only has to flip a class.
  let auxQueue = null;
  const whenIdle = (fn) => (window.requestIdleCallback ? requestIdleCallback(fn, { timeout: 1000 }) : setTimeout(fn, 16));
  function addAux(limit) {
    if (!auxQueue) return;
    const slice = auxQueue.splice(0, limit);
    const added = cy.add(slice);
    if (far) added.edges().addClass("cnb-far");
    if (auxQueue.length) return;
    auxQueue = null;
    auxCreated = true;
    root.dataset.auxReady = "true";
    indexNodes();
    // States that changed while the slices waited.
    cy.batch(() => cy.nodes(".cnb-aux").forEach((n) => {
      const state = codes[encoded[n.data("node")]] || "pending";
      if (n.data("state") !== state) n.data("state", state);
    }));
  }
  function createAuxInBackground() {
    if (auxCreated || auxQueue) return;
    auxQueue = elements("aux");
    const step = () => {
      if (!auxQueue) return;
      addAux(AUX_SLICE);
      if (auxQueue) whenIdle(step);
    };
    whenIdle(step);
  }
  function applyHide() {
    const hide = Boolean(model.get("hide_params"));
    hideBox.checked = hide;
    if (!hide && !auxCreated) {
      if (!auxQueue) auxQueue = elements("aux");
      addAux(Infinity);
    }
    setAuxHidden(hide);
  }
  // Showing or hiding thousands of parameters restyles each of them: what is
  // in view (and around it) changes at once, the rest in idle slices, so the
  // click is answered within a frame or two and no task blocks the page.
  let hideGeneration = 0;
  function setAuxHidden(hide) {
    const generation = ++hideGeneration;
    const apply = (eles) => cy.batch(() => (hide ? eles.addClass("cnb-hidden") : eles.removeClass("cnb-hidden")));
    const all = cy.elements(".cnb-aux");
    if (all.length <= AUX_SLICE * 2) {
      apply(all);
      return;
    }
    const ext = cy.extent();
    const padX = ext.w / 2;
    const padY = ext.h / 2;
    const near = all.nodes().filter((n) => {
      const p = n.position();
      return p.x >= ext.x1 - padX && p.x <= ext.x2 + padX && p.y >= ext.y1 - padY && p.y <= ext.y2 + padY;
    });
    const first = near.union(near.connectedEdges(".cnb-aux"));
    apply(first);
    const rest = all.difference(first).toArray();
    const step = () => {
      if (generation !== hideGeneration || !rest.length) return;
      apply(cy.collection(rest.splice(0, AUX_SLICE)));
      whenIdle(step);
    };
    whenIdle(step);
  }
  hideBox.addEventListener("change", () => {
    model.set("hide_params", hideBox.checked);
    model.save_changes();
    applyHide();
  });
  listen("change:hide_params", applyHide);
  const zoomBy = (factor) => {
    const c = { x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 };
    cy.zoom({ level: cy.zoom() * factor, renderedPosition: c });
  };
  fitButton.addEventListener("click", () => fitAll());
  zoomIn.addEventListener("click", () => zoomBy(1.25));
  zoomOut.addEventListener("click", () => zoomBy(0.8));
  redispatch.addEventListener("click", () => model.send({ event: "open_panel" }));

  listen("change:states", recolour);
  listen("change:status", updateStatus);
  listen("change:cancel_requested", updateStatus);
  listen("change:started_at", updateElapsed);
  listen("change:ended_at", updateElapsed);
  listen("change:failures", updateFailures);
  listen("change:replaced", () => {
    replaced = new Set(model.get("replaced") || []);
    cy.batch(() => nodes.forEach((n, i) => n && (replaced.has(i) ? n.addClass("cnb-replaced") : n.removeClass("cnb-replaced"))));
    updateLegend();
  });
  listen("change:graph", () => {
    // A group expanded, paged or collapsed (or, rarely, another dispatch):
    // redraw the items, keeping the zoom.
    graph = model.get("graph");
    encoded = model.get("states") || "";
    prepare();
    root.dataset.dispatchId = model.get("dispatch_id");
    const keepSelected = selected;
    auxQueue = null;
    cy.batch(() => {
      cy.elements().remove();
      auxCreated = true;
      cy.add(elements("all"));
      if (far) cy.edges().addClass("cnb-far");
    });
    cy.style(stylesheet({ palette, theme: readTheme(), large }));
    indexNodes();
    found = null;
    selected = -1;
    if (keepSelected >= 0 && nodes[keepSelected]) {
      selected = keepSelected;
      nodes[selected].addClass("cnb-selected");
    }
    lastQuery = "";
    buildFunctions();
    updateLegend();
    updateProgress();
    updateGroupbar();
    afterNewGraph();
  });
  listen("change:dispatch_id", () => {
    root.dataset.dispatchId = model.get("dispatch_id");
    idText.textContent = model.get("dispatch_id");
    fallbackStyle.textContent = fallbackRule(model.get("dispatch_id"));
  });

  // render() may run before the element is on the page: a 0x0 container
  // gives an empty canvas, so set the first view once the element first gets a size.
  let sized = false;
  let lastSize = { w: canvas.clientWidth, h: canvas.clientHeight };
  const resize = new ResizeObserver(() => {
    const w = canvas.clientWidth;
    const hgt = canvas.clientHeight;
    if (w === 0 || hgt === 0) return;
    cy.resize();
    if (!sized) {
      sized = true;
      initialView();
    } else {
      cy.panBy({ x: (w - lastSize.w) / 2, y: (hgt - lastSize.h) / 2 });
    }
    lastSize = { w, h: hgt };
  });
  resize.observe(canvas);
  cleanups.push(() => resize.disconnect());

  // cytoscape caches where its canvas sits on the page and refreshes that only
  // on scrolls of the elements that held it when it was created; render() runs
  // before the widget is attached, so JupyterLab's notebook scroller is not
  // among them and clicks after a scroll would land beside the nodes.  Any
  // scroll, anywhere (capture phase), refreshes it, once per frame.
  let scrollQueued = false;
  const onScroll = () => {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      cy.resize();
    });
  };
  document.addEventListener("scroll", onScroll, { capture: true, passive: true });
  cleanups.push(() => document.removeEventListener("scroll", onScroll, { capture: true }));
  // The rows above the canvas change height (the Cancel button goes, the failure
  // banner comes, a group is expanded): the canvas moves on the page without a
  // scroll, and cytoscape's cached position of it must follow, or clicks miss.
  const above = new ResizeObserver(() => onScroll());
  for (const row of [header, functionsEl, failuresEl, toolbar, groupbar]) above.observe(row);
  cleanups.push(() => above.disconnect());

  // JupyterLab switches theme by changing attributes on <body>.
  const themeObserver = new MutationObserver(() => {
    cy.style(stylesheet({ palette, theme: readTheme(), large }));
  });
  themeObserver.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  cleanups.push(() => themeObserver.disconnect());

  buildFunctions();
  updateStatus();
  updateLegend();
  updateProgress();
  updateFailures();
  updateGroupbar();
  if (canvas.clientWidth > 0 && canvas.clientHeight > 0) {
    sized = true;
    lastSize = { w: canvas.clientWidth, h: canvas.clientHeight };
    initialView();
  }
  cy.one("render", () => whenIdle(createAuxInBackground));

  return () => {
    for (const fn of cleanups.reverse()) {
      try {
        fn();
      } catch (e) {
        // Cleanup must go on even if one step fails.
      }
    }
  };
}

export default { render };
