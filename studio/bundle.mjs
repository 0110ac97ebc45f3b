// Bundles the studio and the dashboard into dist/: one minified ES module per
// page, its CSS, and the HTML pages, all referenced by relative URLs so that
// the pages work behind a path prefix.
import * as esbuild from "esbuild";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";

const out = "dist";
for (const f of readdirSync(out)) {
  if (f !== ".keep") rmSync(`${out}/${f}`, { recursive: true });
}
mkdirSync(`${out}/assets`, { recursive: true });
await esbuild.build({
  entryPoints: { studio: "src/studio.js", dashboard: "src/dashboard.js" },
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outdir: `${out}/assets`,
  legalComments: "linked",
  logLevel: "warning",
});
copyFileSync("src/index.html", `${out}/index.html`);
copyFileSync("src/dashboard.html", `${out}/dashboard.html`);
