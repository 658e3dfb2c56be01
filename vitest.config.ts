import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";
import { LongFilesFirst } from "./tests/support/long-files-first.js";

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const TEST_FILES = ["packages/*/src/**/*.test.ts", "examples/*/src/**/*.test.ts", "tests/**/*.test.ts"];
/** Files that replace a module (`vi.mock`): they need a module graph of their own. */
const OWN_MODULES = ["packages/plugin-fs-source/src/fs-source-denied.test.ts"];

export default defineConfig({
	resolve: {
		// Tests run the TypeScript sources, so a test never sees a stale build of another package.
		alias: {
			"@holdfast/core/testing": src("./packages/core/src/testing/index.ts"),
			"@holdfast/core/units": src("./packages/core/src/host/units.ts"),
			"@holdfast/core/key-derivation": src("./packages/core/src/repository/key-derivation.ts"),
			"@holdfast/core/folders": src("./packages/core/src/host/folders.ts"),
			"@holdfast/core": src("./packages/core/src/index.ts"),
			"@holdfast/plugin-fs-source": src("./packages/plugin-fs-source/src/index.ts"),
			"@holdfast/plugin-fs-destination": src("./packages/plugin-fs-destination/src/index.ts"),
			"@holdfast/plugin-b2": src("./packages/plugin-b2/src/index.ts"),
			"@holdfast/plugin-retention-planner": src("./packages/plugin-retention-planner/src/index.ts"),
			"@holdfast/plugin-groom": src("./packages/plugin-groom/src/index.ts"),
		},
	},
	test: {
		// A guard against a hung test, not a speed check: on a busy shared machine a test of a few
		// spawned commands takes minutes. Tests of long work set budgets counted from what they do.
		testTimeout: 300_000,
		hookTimeout: 300_000,
		pool: "forks",
		// Vitest's default is one worker fewer than the cores: a single one on a 2-core machine. Most
		// files wait on spawned commands, the S3 server, the disk or real locks ending (a minute and
		// more), so three run side by side: the two-year simulation holds one worker throughout.
		maxWorkers: 3,
		sequence: { sequencer: LongFilesFirst },
		// Unlock hints of the commands tests run go here, not to the user's cache folder.
		env: { XDG_CACHE_HOME: join(tmpdir(), "holdfast-test-cache") },
		projects: [
			{
				extends: true,
				test: {
					name: "shared",
					include: TEST_FILES,
					exclude: [...configDefaults.exclude, ...OWN_MODULES],
					// A worker runs file after file in one process with the modules it already loaded: a new
					// process loading the core and plugins again cost each file about half a second of CPU.
					// Every file restores what it patches (spies, croner's memo) and stops what it starts.
					isolate: false,
					// Brings the CLI bundle up to date with tsc's output, and starts the real S3 server (Ceph
					// RGW with Object Lock) the integration tests use.
					globalSetup: [
						"tests/support/temp-root-global-setup.ts",
						"tests/support/bundle-global-setup.ts",
						"tests/support/s3-global-setup.ts",
					],
				},
			},
			{
				extends: true,
				test: { name: "own-modules", include: OWN_MODULES, globalSetup: ["tests/support/temp-root-global-setup.ts"] },
			},
		],
	},
});
