import { createRequire } from "node:module";

// src/host and dist/host sit at the same depth, so one relative path serves both.
const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };

export const CORE_VERSION: string = pkg.version;
