// Bundle src/index.js (with cytoscape) into the Python package's static/.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));

await build({
  entryPoints: [path.join(here, "src", "index.js")],
  outfile: path.join(here, "..", "covalent_nb", "static", "graph.js"),
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  loader: { ".css": "text" },
  legalComments: "eof",
  logLevel: "info",
});
