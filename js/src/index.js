// The LatticeGraph view: cytoscape draws the graph at the positions Python
// computed; state changes only restyle nodes, never lay them out again.
//
// Model traits read: dispatch_id, status, graph, states, replaced, details,
// hide_params. Written: selected, hide_params. Custom message sent:
// {event: "open_panel"}. The DOM contract is documented in
// covalent_nb/notebook/graph_widget.py.

import cytoscape from "cytoscape";
import css from "./style.css";
import { STATES, decodeStates, diffStates, countStates, legendText } from "./states.js";
import { stylesheet, themeFrom, fitViewport } from "./style.js";
import { DETAIL_FIELDS, BLOCK_FIELDS, detailValues } from "./details.js";
import { buildElements } from "./elements.js";

// Above this many nodes, draw cheaply: no arrows, textures while panning.
const LARGE_GRAPH = 2000;
// A very wide graph fitted whole shows dots; start zoomed in enough to read
// node shapes, at the top left, and let "Fit" show everything.
const MIN_INITIAL_ZOOM = 0.25;
// Below this zoom a layer gap is a few pixels and edges are a grey smear;
// hiding them saves a third of every redraw of a 10,000-node graph.
const FAR_ZOOM = 0.06;

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

function render({ model, el }) {
  const cleanups = [];
  const listen = (name, fn) => {
    model.on(name, fn);
    cleanups.push(() => model.off(name, fn));
  };

  const root = h("div", { class: "cnb-graph" });
  root.dataset.dispatchId = model.get("dispatch_id");
  root.append(h("style", { text: css }));

  // Toolbar: status, legend, controls.
  const status = h("span", { class: "cnb-status" });
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
    status, legend, h("span", { class: "cnb-spacer" }), hideLabel, zoomOut, zoomIn, fitButton, redispatch,
  ]);

  // Body: canvas and details pane.
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
  root.append(toolbar, body);
  el.append(root);

  // Graph.
  let graph = model.get("graph");
  let codes = graph.codes || {};
  let encoded = model.get("states") || "";
  let auxSet = new Set(graph.aux);
  let uncounted = new Set(graph.uncounted || []);
  let replaced = new Set(model.get("replaced") || []);
  const large = graph.labels.length > LARGE_GRAPH;
  canvas.style.height = `${Math.max(260, Math.min(620, (graph.height || 0) + 60))}px`;

  const readTheme = () => themeFrom((name) => getComputedStyle(root).getPropertyValue(name));
  // Hidden aux nodes of a big graph are created when first shown.
  let auxCreated = !(large && model.get("hide_params"));
  const cy = cytoscape({
    container: canvas,
    elements: buildElements(graph, decodeStates(encoded, codes), replaced, model.get("hide_params"),
      auxCreated ? "all" : "main"),
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
  // Node references by index.  Elements are their own one-element
  // collections; getElementById would build 10,000 new collections.
  const indexNodes = () => {
    const out = new Array(graph.labels.length);
    cy.nodes().forEach((n) => {
      out[Number(n.id())] = n;
    });
    return out;
  };
  let nodes = indexNodes();

  let far = false;
  function updateFar() {
    const now = cy.zoom() < FAR_ZOOM;
    if (now === far) return;
    far = now;
    cy.batch(() => (far ? cy.edges().addClass("cnb-far") : cy.edges().removeClass("cnb-far")));
  }
  cy.on("zoom", updateFar);

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

  function updateStatus() {
    const s = model.get("status") || "";
    status.textContent = s;
    status.dataset.status = s;
  }

  function recolour() {
    const next = model.get("states") || "";
    const changed = diffStates(encoded, next);
    if (changed.length) {
      cy.batch(() => {
        for (const i of changed) {
          if (nodes[i]) nodes[i].data("state", codes[next[i]] || "pending");
        }
      });
    }
    encoded = next;
    updateLegend();
    if (selected >= 0 && changed.includes(selected)) showDetails();
  }

  // Viewport.  Python's layout box gives the fit without cytoscape measuring
  // every element (and its label) for a bounding box.
  function fitAll() {
    const box = { x1: 0, y1: 0, x2: graph.width || 1, y2: graph.height || 1 };
    cy.viewport(fitViewport(box, canvas.clientWidth, canvas.clientHeight, 0));
  }
  function initialView() {
    const box = { x1: 0, y1: 0, x2: graph.width || 1, y2: graph.height || 1 };
    cy.viewport(fitViewport(box, canvas.clientWidth, canvas.clientHeight, MIN_INITIAL_ZOOM));
  }

  // Details pane.
  let selected = -1;
  function showDetails() {
    if (selected < 0 || selected >= graph.labels.length) {
      details.hidden = true;
      return;
    }
    const local = { label: graph.labels[selected], state: codes[encoded[selected]] || "pending" };
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
  }
  cy.on("tap", "node", (evt) => select(Number(evt.target.id())));
  closeDetails.addEventListener("click", () => select(-1));
  listen("change:details", showDetails);

  // Controls.
  hideBox.checked = Boolean(model.get("hide_params"));
  function applyHide() {
    const hide = Boolean(model.get("hide_params"));
    hideBox.checked = hide;
    if (!hide && !auxCreated) {
      auxCreated = true;
      const added = cy.add(buildElements(graph, decodeStates(encoded, codes), replaced, false, "aux"));
      if (far) added.edges().addClass("cnb-far");
      nodes = indexNodes();
      return;
    }
    cy.batch(() => {
      for (const i of auxSet) {
        if (!nodes[i]) continue;
        if (hide) nodes[i].addClass("cnb-hidden");
        else nodes[i].removeClass("cnb-hidden");
      }
    });
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
  listen("change:replaced", () => {
    replaced = new Set(model.get("replaced") || []);
    cy.batch(() => nodes.forEach((n, i) => (replaced.has(i) ? n.addClass("cnb-replaced") : n.removeClass("cnb-replaced"))));
    updateLegend();
  });
  listen("change:graph", () => {
    // A new shape (rare: the widget was pointed at another dispatch).
    graph = model.get("graph");
    codes = graph.codes || {};
    auxSet = new Set(graph.aux);
    uncounted = new Set(graph.uncounted || []);
    palette = graph.palette;
    encoded = model.get("states") || "";
    root.dataset.dispatchId = model.get("dispatch_id");
    cy.elements().remove();
    auxCreated = true;
    cy.add(buildElements(graph, decodeStates(encoded, codes), replaced, model.get("hide_params")));
    if (far) cy.edges().addClass("cnb-far");
    nodes = indexNodes();
    select(-1);
    updateLegend();
    initialView();
  });
  listen("change:dispatch_id", () => {
    root.dataset.dispatchId = model.get("dispatch_id");
  });

  // render() may run before the element is on the page: a 0x0 container
  // gives an empty canvas, so fit once the element first gets a size.
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
      // Keep what was in the middle in the middle (the details pane opening
      // narrows the canvas; cytoscape alone would keep the left edge).
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

  // JupyterLab switches theme by changing attributes on <body>.
  const themeObserver = new MutationObserver(() => {
    cy.style(stylesheet({ palette, theme: readTheme(), large }));
  });
  themeObserver.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  cleanups.push(() => themeObserver.disconnect());

  updateStatus();
  updateLegend();
  if (canvas.clientWidth > 0 && canvas.clientHeight > 0) {
    sized = true;
    lastSize = { w: canvas.clientWidth, h: canvas.clientHeight };
    initialView();
  }

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
