import { accessSync, constants, statfsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
	type Catalog,
	Engine,
	type HoldfastConfig,
	ManualClock,
	openCatalog,
	type PluginDefinition,
	PluginHost,
	parseConfigText,
	type SetConfig,
} from "@holdfast/core";
import { MemoryLogger } from "@holdfast/core/testing";
import b2 from "@holdfast/plugin-b2";
import fsDestination from "@holdfast/plugin-fs-destination";
import fsSource from "@holdfast/plugin-fs-source";
import groom from "@holdfast/plugin-groom";
import planner from "@holdfast/plugin-retention-planner";
import { MEMORY_STORE_PLUGIN, memoryStorePlugin } from "./memory-store-plugin.js";

/** The plugins a test config can name, by package name, without a build. */
export const BUILTINS = new Map<string, PluginDefinition>([
	["@holdfast/plugin-fs-source", fsSource as PluginDefinition],
	["@holdfast/plugin-fs-destination", fsDestination as PluginDefinition],
	["@holdfast/plugin-retention-planner", planner as PluginDefinition],
	["@holdfast/plugin-groom", groom as PluginDefinition],
	["@holdfast/plugin-b2", b2 as PluginDefinition],
]);

/** What a test config loads unless it names its own plugins. */
export const DEFAULT_PLUGINS = [
	"@holdfast/plugin-fs-source",
	"@holdfast/plugin-fs-destination",
	"@holdfast/plugin-retention-planner",
	"@holdfast/plugin-groom",
];

export interface Harness {
	readonly dir: string;
	readonly clock: ManualClock;
	readonly logger: MemoryLogger;
	engine: Engine;
	host: PluginHost;
	catalog: Catalog;
	/** Drops the catalog and starts over with a new one (a machine that lost its cache). */
	reopen(options?: { freshCatalog?: boolean; password?: string }): Promise<void>;
	/** Replaces the config's sets and reopens (a user who edited holdfast.yaml between runs). */
	reconfigure(sets: Record<string, SetConfig>): Promise<void>;
	close(): Promise<void>;
}

export async function tempDir(prefix = "holdfast-test-", where = tmpdir()): Promise<string> {
	return mkdtemp(join(where, prefix));
}

/**
 * A folder in memory (tmpfs) where the machine has one, else the usual temporary folder: for
 * simulations of hundreds of runs, whose thousands of small objects are each written with an
 * fsync that on a disk shared with other work costs more than everything else a run does.
 * What they test is the promise over time, not the disk.
 */
function memoryFolder(): string {
	const shm = "/dev/shm";
	if (process.env.HOLDFAST_TEST_NO_TMPFS) return tmpdir();
	try {
		accessSync(shm, constants.W_OK);
		// A container's /dev/shm is often 64 MiB: too small for several simulations at once.
		const { bavail, bsize } = statfsSync(shm);
		if (bavail * bsize < MEMORY_FOLDER_MIN_FREE) return tmpdir();
		// The run's own folder there (temp-root-global-setup.ts), removed with the run.
		return process.env.HOLDFAST_TEST_MEMORY_ROOT ?? shm;
	} catch {
		return tmpdir();
	}
}

/** Free space a memory folder must have to be used: what the simulations running at once write, with room to spare. */
const MEMORY_FOLDER_MIN_FREE = 2 * 1024 ** 3;

export function setConfig(dir: string, overrides: Partial<SetConfig> = {}): SetConfig {
	return {
		sources: [{ type: "fs", path: join(dir, "src") }],
		destination: { type: "fs", path: join(dir, "repo") },
		retention: { days: 90, mode: "compliance" },
		...overrides,
	};
}

export async function createHarness(
	options: {
		/** The sets, given the test's own folder (sources and repository live under it). */
		sets?: (dir: string) => Record<string, SetConfig>;
		plugins?: HoldfastConfig["plugins"];
		start?: string;
		password?: string;
		extraBuiltins?: Map<string, PluginDefinition>;
		/** What plugins and the engine see as the environment (credentials, HOLDFAST_RETRY_BUDGET). */
		env?: NodeJS.ProcessEnv;
		/** Keeps the folder in memory where the machine allows (long simulations of small data). */
		inMemory?: boolean;
		/** Loads the `memory` destination type with the default plugins (see memory-store-plugin.ts). */
		memoryStore?: boolean;
		/**
		 * Keeps the catalog in memory (`memory:`), across reopened engines unless a fresh one is
		 * asked: for simulations of hundreds of runs, where each run looks up every tree of every
		 * snapshot in its window, and SQLite's reads and their decoding cost more than the run.
		 */
		memoryCatalog?: boolean;
	} = {},
): Promise<Harness> {
	const dir = await tempDir("holdfast-test-", options.inMemory ? memoryFolder() : tmpdir());
	await mkdir(join(dir, "src"), { recursive: true });
	const clock = new ManualClock(options.start ?? "2030-01-06T02:00:00Z");
	const logger = new MemoryLogger("info");
	const config: HoldfastConfig = {
		plugins: options.plugins ?? (options.memoryStore ? [...DEFAULT_PLUGINS, MEMORY_STORE_PLUGIN] : DEFAULT_PLUGINS),
		sets: options.sets?.(dir) ?? { main: setConfig(dir) },
	};
	// The memory stores are the harness's own: they outlive a reopened engine, not the harness.
	const builtins = new Map([...BUILTINS, [MEMORY_STORE_PLUGIN, memoryStorePlugin()], ...(options.extraBuiltins ?? [])]);
	let password = options.password ?? "correct horse";
	let catalogPath = join(dir, "catalog.sqlite");
	const harness = {
		dir,
		clock,
		logger,
	} as Harness;
	let memoryCatalog: Catalog | undefined;
	const open = async () => {
		const loaded = parseConfigText(JSON.stringify(config), join(dir, "holdfast.json"));
		const catalog = options.memoryCatalog
			? (memoryCatalog ??= await openCatalog("memory:", dir))
			: await openCatalog(`sqlite://${catalogPath}`, dir, undefined, { onDamage: (line) => logger.warn(line) });
		const host = new PluginHost({ loaded, clock, logger, catalog, builtins });
		await host.start();
		harness.host = host;
		harness.catalog = catalog;
		harness.engine = new Engine({
			host,
			loaded,
			clock,
			logger,
			catalog,
			password: async () => password,
			...(options.env ? { env: options.env } : {}),
			scrypt: { N: 1024, r: 8, p: 1 },
		});
	};
	harness.reopen = async (o = {}) => {
		await harness.engine.close();
		await harness.host.dispose();
		await harness.catalog.disconnect();
		if (o.freshCatalog) {
			catalogPath = join(dir, `catalog-${Date.now()}.sqlite`);
			memoryCatalog = undefined;
		}
		if (o.password) password = o.password;
		await open();
	};
	harness.reconfigure = async (sets) => {
		config.sets = sets;
		await harness.reopen();
	};
	harness.close = async () => {
		await harness.engine.close();
		await harness.host.dispose();
		await harness.catalog.disconnect();
		await rm(dir, { recursive: true, force: true });
	};
	await open();
	return harness;
}
