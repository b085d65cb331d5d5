// Pure functions that turn states, palette and theme into cytoscape styles.
//
// The palette (state -> colour, plus "replaced") is Python's: it travels in
// the `graph` trait (covalent_nb/notebook/states.py PALETTE), so the live view
// and the static SVG draw the same colours and there is no copy here.

import { STATES } from "./states.js";

/** Theme colours when no JupyterLab CSS variables are defined (light). */
export const FALLBACK_THEME = Object.freeze({
  text: "#1f2328",
  muted: "#616161",
  background: "#ffffff",
  edge: "#9e9e9e",
  border: "#5f6b7a",
  accent: "#1976d2",
  font: "sans-serif",
});

/** JupyterLab CSS variable read for each theme slot. */
export const THEME_VARIABLES = Object.freeze({
  text: "--jp-ui-font-color1",
  muted: "--jp-ui-font-color2",
  background: "--jp-layout-color1",
  edge: "--jp-border-color1",
  border: "--jp-border-color0",
  accent: "--jp-brand-color1",
  // Canvas text cannot resolve var(), so the font family is read like a colour.
  font: "--jp-ui-font-family",
});

/**
 * Build a theme from a CSS variable getter, falling back slot by slot.
 * @param {(name: string) => string} getVar returns "" for undefined variables
 */
export function themeFrom(getVar) {
  const theme = {};
  for (const [slot, variable] of Object.entries(THEME_VARIABLES)) {
    const value = (getVar(variable) || "").trim();
    theme[slot] = value || FALLBACK_THEME[slot];
  }
  return theme;
}

/**
 * Black or white, whichever reads better on a "#rrggbb" background.
 * @param {string} hex
 */
export function textColourOn(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  if (!m) return "#000000";
  const [r, g, b] = m.slice(1).map((h) => {
    const c = parseInt(h, 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  // Contrast against black vs. against white (WCAG formula).
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#000000" : "#ffffff";
}

/**
 * Visual attributes of one node state (the unit the legend and tests use).
 * @param {string} state
 * @param {Object<string,string>} palette
 */
export function stateStyle(state, palette) {
  const fill = palette[state] || palette.pending;
  return {
    "background-color": fill,
    color: textColourOn(fill),
    // Cancelled nodes are also told apart by shape of border, not colour only.
    "border-style": state === "cancelled" ? "dashed" : "solid",
  };
}

/** Label size in model pixels: at the first view's zoom (>= 1) labels read at 11 px or more. */
export const LABEL_PX = 12;
export const SMALL_LABEL_PX = 11;

/**
 * The cytoscape stylesheet for a graph.
 *
 * @param {object} options
 * @param {Object<string,string>} options.palette state -> colour, plus "replaced" (Python's)
 * @param {object} options.theme see themeFrom
 * @param {boolean} options.large cheaper rendering for big graphs
 * @returns {object[]} cytoscape style JSON
 */
export function stylesheet({ palette, theme, large }) {
  const style = [
    {
      selector: "node",
      style: {
        shape: "round-rectangle",
        width: "data(w)",
        height: "data(h)",
        label: "data(label)",
        "font-size": LABEL_PX,
        "font-family": theme.font,
        "text-valign": "center",
        "text-halign": "center",
        "text-wrap": "ellipsis",
        "text-max-width": "data(w)",
        // Labels vanish when zoomed out so 10k nodes stay cheap to draw.
        "min-zoomed-font-size": large ? 9 : 5,
        "border-width": 1,
        "border-color": theme.border,
      },
    },
  ];
  for (const state of STATES) {
    style.push({ selector: `node[state = "${state}"]`, style: stateStyle(state, palette) });
  }
  style.push(
    {
      // Bookkeeping (getters, lists, dicts, postprocess): compact chips.
      selector: "node.cnb-role-b, node.cnb-role-a",
      style: { shape: "round-rectangle", "font-size": SMALL_LABEL_PX, "border-width": 0, "corner-radius": 11 },
    },
    {
      // Parameters: small dots labelled above, clear of the edge to their consumer.
      selector: "node.cnb-param",
      style: {
        shape: "ellipse",
        "font-size": SMALL_LABEL_PX,
        color: theme.muted,
        "text-valign": "top",
        "text-margin-y": -2,
        "text-max-width": 120,
        "border-width": 0,
      },
    },
    {
      // A group: a card outlined in its state's colour, its count and state
      // words, and a stacked bar of its members' states along the bottom.
      selector: "node.cnb-group",
      style: {
        "background-color": theme.background,
        color: theme.text,
        "border-width": 3,
        "border-color": (n) => palette[n.data("state")] || palette.pending,
        "border-style": "solid",
        "text-wrap": "wrap",
        "text-max-width": (n) => `${n.data("w") - 8}px`,
        "text-margin-y": -8,
        "line-height": 1.35,
        "font-weight": "bold",
        "background-image": "data(bar)",
        "background-fit": "none",
        "background-width": "86%",
        "background-height": "8px",
        "background-position-x": "50%",
        "background-position-y": "84%",
        "background-clip": "node",
      },
    },
    {
      selector: "node.cnb-replaced",
      style: { "border-width": 4, "border-style": "double", "border-color": palette.replaced },
    },
    {
      // Selection is a ring outside the node in the theme's accent: it never
      // tints the fill, so a selected failed node stays red (not "reused" violet).
      selector: "node.cnb-selected",
      style: {
        "outline-width": 3,
        "outline-color": theme.accent,
        "outline-offset": 3,
        "outline-style": "solid",
        "outline-opacity": 1,
        "z-index": 10,
      },
    },
    {
      selector: "node.cnb-found",
      style: { "outline-width": 3, "outline-color": theme.accent, "outline-offset": 6, "outline-style": "dashed" },
    },
    // Hidden parameters are invisible, not removed from the layout: their
    // boxes and labels are measured once, when created, so showing 4,000 of
    // them again is one redraw, not a measuring pass (a 400 ms task at 10,000 nodes).
    { selector: ".cnb-hidden", style: { visibility: "hidden", events: "no" } },
    { selector: "edge.cnb-far", style: { display: "none" } },
    {
      selector: "edge",
      style: {
        // Edges are never clicked; leaving them out of hit tests makes every
        // mouse move over a 10,000-node graph much cheaper.
        events: "no",
        width: 1,
        "line-color": theme.edge,
        "target-arrow-color": theme.edge,
        // Haystack edges are the cheapest cytoscape draws; arrows need bezier.
        "curve-style": large ? "haystack" : "bezier",
        "target-arrow-shape": large ? "none" : "triangle",
        "arrow-scale": 0.8,
      },
    },
    {
      selector: "edge[label]",
      style: {
        label: "data(label)",
        "font-size": SMALL_LABEL_PX,
        color: theme.muted,
        "text-background-color": theme.background,
        "text-background-opacity": 0.8,
        "min-zoomed-font-size": 7,
      },
    },
  );
  return style;
}

/**
 * Zoom and pan that fit a box into a viewport, with a floor on the zoom.
 *
 * When the fitting zoom is below *minZoom* (a very wide or tall graph), the
 * view zooms to *minZoom* and shows the box's top-left corner instead.
 *
 * @param {{x1:number,y1:number,x2:number,y2:number}} box model coordinates
 * @param {number} width viewport width in pixels
 * @param {number} height viewport height in pixels
 * @param {number} minZoom 0 for a plain fit
 * @param {number} padding pixels kept free around the box
 * @returns {{zoom:number, pan:{x:number,y:number}}}
 */
export function fitViewport(box, width, height, minZoom = 0, padding = 16, maxZoom = 1.5) {
  const bw = Math.max(1, box.x2 - box.x1);
  const bh = Math.max(1, box.y2 - box.y1);
  const availW = Math.max(1, width - 2 * padding);
  const availH = Math.max(1, height - 2 * padding);
  let zoom = Math.min(availW / bw, availH / bh, maxZoom);
  if (zoom >= minZoom) {
    // Centre the box.
    return {
      zoom,
      pan: { x: (width - zoom * (box.x1 + box.x2)) / 2, y: (height - zoom * (box.y1 + box.y2)) / 2 },
    };
  }
  zoom = minZoom;
  const pan = {
    // Centre an axis that fits at this zoom; otherwise start at its beginning.
    x: zoom * bw <= availW ? (width - zoom * (box.x1 + box.x2)) / 2 : padding - zoom * box.x1,
    y: zoom * bh <= availH ? (height - zoom * (box.y1 + box.y2)) / 2 : padding - zoom * box.y1,
  };
  return { zoom, pan };
}
