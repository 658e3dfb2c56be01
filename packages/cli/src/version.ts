import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_DIR } from "./cli-dir.js";

const pkg = JSON.parse(readFileSync(join(CLI_DIR, "package.json"), "utf8")) as { version: string };

/** The CLI's own version, as published. */
export const CLI_VERSION: string = pkg.version;
