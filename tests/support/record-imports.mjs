// Loaded with `node --import`: prints "import <url>" on stderr for every module the process loads.
import { register } from "node:module";

register(
	`data:text/javascript,${encodeURIComponent(
		'export async function load(url, context, next) { process._rawDebug("import " + url); return next(url, context); }',
	)}`,
);
