// Loaded with `node --import` into a CLI run: the process SIGKILLs itself just before or just
// after the n-th file rename or removal whose path matches, as `kill -9` would at that moment.
// Counting file operations, not milliseconds, makes the moment the same on a fast or a loaded
// machine. HOLDFAST_TEST_KILL is JSON: { "op": "rename" | "rm", "match": "<regex>", "nth": 3, "when": "before" | "after" }.
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { isMainThread } from "node:worker_threads";

const spec = process.env.HOLDFAST_TEST_KILL ? JSON.parse(process.env.HOLDFAST_TEST_KILL) : undefined;

if (spec && isMainThread) {
	const match = new RegExp(spec.match);
	let seen = 0;
	const die = () => process.kill(process.pid, "SIGKILL");
	const counts = (path) => match.test(Buffer.isBuffer(path) ? path.toString("latin1") : String(path)) && ++seen === spec.nth;
	// The path a rename creates, or the path a removal takes away.
	const pathOf = (args) => (spec.op === "rename" ? args[1] : args[0]);
	const wrapAsync = (original) =>
		async function killable(...args) {
			const last = counts(pathOf(args));
			if (last && spec.when === "before") die();
			const result = await original.apply(this, args);
			if (last) die();
			return result;
		};
	const wrapSync = (original) =>
		function killable(...args) {
			const last = counts(pathOf(args));
			if (last && spec.when === "before") die();
			const result = original.apply(this, args);
			if (last) die();
			return result;
		};
	if (spec.op === "rename") {
		fs.promises.rename = wrapAsync(fs.promises.rename);
		fs.renameSync = wrapSync(fs.renameSync);
	} else {
		fs.promises.rm = wrapAsync(fs.promises.rm);
		fs.promises.unlink = wrapAsync(fs.promises.unlink);
	}
	// ES modules importing `node:fs/promises` by name see the wrapped functions too.
	syncBuiltinESMExports();
}
