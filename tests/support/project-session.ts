import { join } from "node:path";
import {
	type Catalog,
	DEFAULT_CATALOG_URI,
	Engine,
	loadConfigFile,
	ManualClock,
	openCatalog,
	PluginHost,
	SystemClock,
} from "@holdfast/core";
import { MemoryLogger } from "@holdfast/core/testing";
import { BUILTINS } from "./harness.js";

export interface ProjectOptions {
	/** What the command would see as its environment: the store's keys, HOLDFAST_RETRY_BUDGET. */
	readonly env?: NodeJS.ProcessEnv;
	/** The command's `--now`; else the real clock. */
	readonly now?: Date;
}

export interface ProjectSession {
	readonly engine: Engine;
	readonly logger: MemoryLogger;
}

/**
 * Runs `use` with the engine a command in `dir` opens (its holdfast.yaml, its catalog, the
 * test password), in this process: for steps that test what the engine does, not what a
 * command prints, without paying a spawned command's start (about 0.25 s of CPU each).
 */
export async function inProject<T>(
	dir: string,
	options: ProjectOptions,
	use: (session: ProjectSession) => Promise<T>,
): Promise<T> {
	const env: NodeJS.ProcessEnv = { ...process.env, HOLDFAST_PASSWORD: "correct horse", ...options.env };
	const loaded = await loadConfigFile(join(dir, "holdfast.yaml"));
	const clock = options.now ? new ManualClock(options.now) : new SystemClock();
	const logger = new MemoryLogger("info");
	const catalog: Catalog = await openCatalog(loaded.config.catalog ?? DEFAULT_CATALOG_URI, loaded.dir, undefined, {
		onDamage: (line) => logger.warn(line),
	});
	const host = new PluginHost({ loaded, clock, logger, catalog, builtins: BUILTINS });
	let engine: Engine | undefined;
	try {
		await host.start();
		engine = new Engine({
			host,
			loaded,
			clock,
			logger,
			catalog,
			password: async () => env.HOLDFAST_PASSWORD as string,
			env,
			scrypt: { N: Number(env.HOLDFAST_SCRYPT_N ?? 1024), r: 8, p: 1 },
		});
		return await use({ engine, logger });
	} finally {
		await engine?.close();
		await host.dispose();
		await catalog.disconnect();
	}
}

/** Opens the engine of `dir` for one step: what one command would be, run in this process. */
export type Opener = <T>(use: (engine: Engine) => Promise<T>) => Promise<T>;

export function projectEngine(dir: string, env: NodeJS.ProcessEnv = {}, now?: Date): Opener {
	return (use) => inProject(dir, { env, ...(now ? { now } : {}) }, ({ engine }) => use(engine));
}
