import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { LongFilesFirst } from "./tests/support/long-files-first.js";

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
	resolve: {
		// Tests run the TypeScript sources, so a test never sees a stale build of another package.
		alias: {
			"@holdfast/core/testing": src("./packages/core/src/testing/index.ts"),
			"@holdfast/core/units": src("./packages/core/src/host/units.ts"),
			"@holdfast/core": src("./packages/core/src/index.ts"),
			"@holdfast/plugin-fs-source": src("./packages/plugin-fs-source/src/index.ts"),
			"@holdfast/plugin-fs-destination": src("./packages/plugin-fs-destination/src/index.ts"),
			"@holdfast/plugin-b2": src("./packages/plugin-b2/src/index.ts"),
			"@holdfast/plugin-retention-planner": src("./packages/plugin-retention-planner/src/index.ts"),
			"@holdfast/plugin-groom": src("./packages/plugin-groom/src/index.ts"),
		},
	},
	test: {
		include: ["packages/*/src/**/*.test.ts", "examples/*/src/**/*.test.ts", "tests/**/*.test.ts"],
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
		// Brings the CLI bundle up to date with tsc's output, and starts the real S3 server (Ceph
		// RGW with Object Lock) the integration tests use.
		globalSetup: ["tests/support/bundle-global-setup.ts", "tests/support/s3-global-setup.ts"],
	},
});
