#!/usr/bin/env node
import module from "node:module";

// Node 22 and later keep V8's compiled code between runs: a later start skips compiling the bundle.
module.enableCompileCache?.();
const { main } = await import("../dist/bundle/main.js");

process.exitCode = await main(process.argv.slice(2));
