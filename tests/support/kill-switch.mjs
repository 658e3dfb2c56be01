// Loaded with `node --import` into a CLI run: the process SIGKILLs itself just before or just
// after the n-th file rename or removal whose path matches, as `kill -9` would at that moment.
// Counting file operations, not milliseconds, makes the moment the same on a fast or a loaded
// machine. HOLDFAST_TEST_KILL is JSON: { "op": "rename" | "rm", "match": "<regex>", "nth": 3,
// "when": "before" | "after", "counter": "<folder>" }. Worker threads load it too (a restore
// renames files on them), so the count is kept across threads in `counter`: each matching
// operation takes the next number by creating a folder of that name, which one thread alone can.
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";

const spec = process.env.HOLDFAST_TEST_KILL ? JSON.parse(process.env.HOLDFAST_TEST_KILL) : undefined;

if (spec) {
	const match = new RegExp(spec.match);
	const mkdirSync = fs.mkdirSync;
	mkdirSync(spec.counter, { recursive: true });
	let from = 1;
	const take = () => {
		for (let n = from; ; n++) {
			try {
				mkdirSync(join(spec.counter, String(n)));
				from = n + 1;
				return n;
			} catch (error) {
				if (error.code !== "EEXIST") throw error;
			}
		}
	};
	const die = () => process.kill(process.pid, "SIGKILL");
	const counts = (path) => match.test(Buffer.isBuffer(path) ? path.toString("latin1") : String(path)) && take() === spec.nth;
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
	// ES modules importing `node:fs` or `node:fs/promises` by name see the wrapped functions too.
	syncBuiltinESMExports();
}
