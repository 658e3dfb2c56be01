// Run by a test in a process of its own: bundles an import of yargs' string-width with the
// bundler's lazy-string-width plugin, then prints, as JSON, what the lazy and the real one
// measure for each text given and how many Intl.Segmenters were built along the way.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { lazyStringWidth } from "../../scripts/bundle.mjs";

const yargsDir = fileURLToPath(new URL("../../node_modules/yargs/", import.meta.url));
const texts = JSON.parse(process.argv[2]);

let segmenters = 0;
const Segmenter = Intl.Segmenter;
Intl.Segmenter = class extends Segmenter {
	constructor(...args) {
		super(...args);
		segmenters++;
	}
};

const out = await build({
	stdin: { contents: 'export { default } from "string-width";', resolveDir: yargsDir, loader: "js" },
	bundle: true,
	format: "esm",
	platform: "node",
	write: false,
	logLevel: "error",
	plugins: [lazyStringWidth()],
});
const dir = mkdtempSync(join(tmpdir(), "holdfast-width-"));
const file = join(dir, "width.mjs");
writeFileSync(file, out.outputFiles[0].text);
const { default: lazy } = await import(pathToFileURL(file).href);
rmSync(dir, { recursive: true });
const result = { loaded: segmenters, lazy: [], segmentersAfter: [] };
for (const text of texts) {
	result.lazy.push(lazy(text));
	result.segmentersAfter.push(segmenters);
}
const { default: real } = await import(pathToFileURL(join(yargsDir, "node_modules/string-width/index.js")).href);
result.real = texts.map((text) => real(text));
process.stdout.write(JSON.stringify(result));
