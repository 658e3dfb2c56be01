#!/usr/bin/env node
import module from "node:module";

// Node 22 and later keep V8's compiled code between runs: a later start skips compiling the bundle.
module.enableCompileCache?.();

// One module (src/launch.ts, bundled into dist/launcher): the Node settings and the early key derivation.
const launch = await import("../dist/launcher/launch.js");
launch.setCompileBudget();
const argv = process.argv.slice(2);
// scrypt on the libuv pool while the CLI loads (dist/derive-at-launch.js says when it starts).
await launch.deriveAtLaunch(argv);
await run(argv);

async function run(argv) {
	const { main } = await import("../dist/bundle/main.js");

	// A command whose work can no longer finish would leave Node to exit with code 13 and a warning: say it in one line.
	let finished = false;
	process.once("beforeExit", () => {
		if (finished) return;
		process.stderr.write(
			"holdfast: internal error: the command stopped waiting on work that can no longer finish; please report it\n",
		);
		process.exitCode = 1;
	});
	process.exitCode = await main(argv);
	finished = true;
}
