// Loaded with `node --import`: prints "import <url>" on stderr for every ES module the process
// loads, and "require <name>" for every CommonJS require (the load hook does not see those on Node 20).
import Module, { register } from "node:module";

register(
	`data:text/javascript,${encodeURIComponent(
		'export async function load(url, context, next) { process._rawDebug("import " + url); return next(url, context); }',
	)}`,
);

const load = Module._load;
Module._load = function recordRequire(request, ...rest) {
	process._rawDebug(`require ${request}`);
	return load.call(this, request, ...rest);
};
