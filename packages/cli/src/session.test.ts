import { existsSync, readFileSync, realpathSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EarlyKeyDerivations } from "@holdfast/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deriveAtLaunch, type LaunchedDerivation, takeLaunchedDerivation } from "./derive-at-launch.js";
import { openSession } from "./session.js";

const saved = {
	password: process.env.HOLDFAST_PASSWORD,
	scrypt: process.env.HOLDFAST_SCRYPT_N,
	cache: process.env.XDG_CACHE_HOME,
};
beforeEach(() => {
	process.env.HOLDFAST_PASSWORD = "session test";
	process.env.HOLDFAST_SCRYPT_N = "1024";
});
afterEach(() => {
	takeLaunchedDerivation();
	for (const [name, value] of [
		["HOLDFAST_PASSWORD", saved.password],
		["HOLDFAST_SCRYPT_N", saved.scrypt],
		["XDG_CACHE_HOME", saved.cache],
	] as const) {
		if (value === undefined) delete process.env[name];
		else process.env[name] = value;
	}
});

async function configDir(destination = "./repo") {
	const dir = await mkdtemp(join(tmpdir(), "holdfast-session-"));
	await mkdir(join(dir, "data"));
	await writeFile(
		join(dir, "holdfast.yaml"),
		`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination"]
catalog: sqlite://./state/catalog.sqlite
sets:
  docs:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ${destination} }
    retention: { days: 1 }
`,
	);
	// Each test's hints in a cache folder of its own.
	process.env.XDG_CACHE_HOME = join(dir, "cache");
	return { dir, config: join(dir, "holdfast.yaml"), hints: join(dir, "cache/holdfast/unlock-hints.json") };
}

/** Runs `body` in a session of the config; the session is closed whatever happens. */
async function inSession<T>(
	config: string,
	unlocksSet: boolean,
	body: (session: Awaited<ReturnType<typeof openSession>>) => Promise<T>,
): Promise<T> {
	const session = await openSession({ config }, { unlocksSet });
	try {
		return await body(session);
	} finally {
		await session.close();
	}
}

describe("a session that unlocks its set", () => {
	it("records the key file that opened the set, and the next one starts deriving before it reads a key file", async () => {
		const { config, hints } = await configDir();
		await inSession(config, false, async ({ engine }) => engine.init());
		// A command that opens no repository ahead records nothing.
		await inSession(config, false, async ({ engine }) => engine.snapshots());
		expect(existsSync(hints)).toBe(false);
		await inSession(config, true, async ({ engine }) => {
			expect(engine.options.earlyKeys?.pending).toBe(0);
			expect(await engine.snapshots()).toEqual([]);
		});
		const recorded = JSON.parse(readFileSync(hints, "utf8"));
		expect(recorded.configs[realpathSync(config)]).toMatchObject({ only: "docs", sets: { docs: { N: 1024, r: 8, p: 1 } } });
		await inSession(config, true, async ({ engine }) => {
			// Started as the session opened, and taken by the unlock.
			expect(engine.options.earlyKeys?.pending).toBe(1);
			expect(await engine.snapshots()).toEqual([]);
			expect(engine.options.earlyKeys?.pending).toBe(0);
		});
	});

	it("records the key file an init made, the one the next unlock tries first, and the next command derives it ahead", async () => {
		const { config, hints } = await configDir();
		await inSession(config, true, async ({ engine }) => engine.init());
		const recorded = JSON.parse(readFileSync(hints, "utf8"));
		const salt = recorded.configs[realpathSync(config)]?.sets?.docs?.salt;
		expect(salt).toEqual(expect.any(String));
		await inSession(config, true, async ({ engine }) => {
			// Started as the session opened, and taken by the unlock: the init recorded the right key file.
			expect(engine.options.earlyKeys?.pending).toBe(1);
			const take = vi.spyOn(EarlyKeyDerivations.prototype, "take");
			try {
				expect(await engine.snapshots()).toEqual([]);
				expect(take.mock.results[0]?.value).toBeInstanceOf(Promise);
			} finally {
				take.mockRestore();
			}
			expect(engine.options.earlyKeys?.pending).toBe(0);
		});
		// The unlock recorded the key file that opened the set: the one the init recorded.
		expect(JSON.parse(readFileSync(hints, "utf8")).configs[realpathSync(config)].sets.docs.salt).toBe(salt);
	});

	it("takes in what the launcher started, so the unlock derives nothing itself", async () => {
		const { dir, config, hints } = await configDir();
		await inSession(config, false, async ({ engine }) => engine.init());
		await inSession(config, true, async ({ engine }) => engine.snapshots());
		await deriveAtLaunch(["snapshots", "--config", config], process.env, dir);
		// What the launcher leaves for the session (derive-at-launch.ts hands it over on globalThis).
		const launched = (globalThis as Record<symbol, LaunchedDerivation | undefined>)[Symbol.for("holdfast.launched-derivation")];
		expect(launched?.password).toBe("session test");
		const adopt = vi.spyOn(EarlyKeyDerivations.prototype, "adopt");
		const start = vi.spyOn(EarlyKeyDerivations.prototype, "start");
		try {
			await inSession(config, true, async ({ engine }) => {
				expect(engine.options.earlyKeys?.pending).toBe(1);
				expect(await engine.snapshots()).toEqual([]);
				expect(engine.options.earlyKeys?.pending).toBe(0);
			});
			// The launcher's derivation itself was taken in; the session's own start found it there and started none.
			expect(adopt).toHaveBeenCalledTimes(1);
			expect(adopt.mock.calls[0]?.[2]).toBe(launched?.deriving);
			expect(start).toHaveBeenCalledTimes(1);
		} finally {
			adopt.mockRestore();
			start.mockRestore();
		}
		expect(takeLaunchedDerivation()).toBeUndefined();
		// Nothing secret is kept: no password, no key.
		expect(readFileSync(hints, "utf8")).not.toMatch(/session test/);
	});

	it("with a wrong password derived ahead, says the password is wrong", async () => {
		const { config } = await configDir();
		await inSession(config, false, async ({ engine }) => engine.init());
		await inSession(config, true, async ({ engine }) => engine.snapshots());
		process.env.HOLDFAST_PASSWORD = "not the password";
		const failure = await inSession(config, true, async ({ engine }) => {
			expect(engine.options.earlyKeys?.pending).toBe(1);
			return engine.snapshots();
		}).catch((error: unknown) => error);
		expect((failure as Error).message).toMatch(/^wrong password for the repository at /);
	});

	it("a password file missing when a long session needs it is read again at its next run", async () => {
		const { dir, config } = await configDir();
		await writeFile(config, `${await readFile(config, "utf8")}password: { file: ./password.txt }\n`);
		delete process.env.HOLDFAST_PASSWORD;
		await writeFile(join(dir, "password.txt"), "from the file\n");
		await inSession(config, false, async ({ engine }) => engine.init());
		await rm(join(dir, "password.txt"));
		// As the daemon holds one session across runs.
		const session = await openSession({ config }, { runningClock: true });
		try {
			const first = await session.engine.snapshots().catch((error: unknown) => error);
			expect((first as Error).message).toMatch(/password: cannot read .*password\.txt/);
			await writeFile(join(dir, "password.txt"), "from the file\n");
			expect(await session.engine.snapshots()).toEqual([]);
		} finally {
			await session.close();
		}
	});
});
