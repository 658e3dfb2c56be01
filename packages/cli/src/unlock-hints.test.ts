import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deriveKey, type KeyDerivationInput } from "@holdfast/core/key-derivation";
import { afterEach, describe, expect, it } from "vitest";
import { deriveAtLaunch, takeLaunchedDerivation } from "./derive-at-launch.js";
import { type ConfigHints, hintsFile, readConfigHints, recordUnlock, setHint, textHash } from "./unlock-hints.js";

const input: KeyDerivationInput = { salt: randomBytes(32).toString("base64"), N: 1024, r: 8, p: 1 };
const CONFIG_TEXT = "sets: { docs: {} }\n";

afterEach(() => {
	takeLaunchedDerivation();
});

async function place() {
	const dir = await mkdtemp(join(tmpdir(), "holdfast-unlock-hints-"));
	await mkdir(join(dir, "cache"));
	await writeFile(join(dir, "holdfast.yaml"), CONFIG_TEXT);
	const env = { XDG_CACHE_HOME: join(dir, "cache") };
	return { dir, env, file: hintsFile(env) as string, config: join(dir, "holdfast.yaml") };
}

const docsOnly = (extra: Partial<ConfigHints> = {}) => ({ text: textHash(Buffer.from(CONFIG_TEXT)), only: "docs", ...extra });

describe("unlock hints", () => {
	it("gives back what was written for a config's set and its destination, and nothing for another", async () => {
		const { file, config } = await place();
		expect(readConfigHints(file, config)).toBeUndefined();
		recordUnlock(file, config, docsOnly(), "docs", { type: "fs", path: "./repo" }, input);
		recordUnlock(file, config, docsOnly(), "photos", { type: "fs", path: "./other" }, { ...input, N: 2048 });
		const hints = readConfigHints(file, config);
		expect(setHint(hints, "docs", { type: "fs", path: "./repo" })).toEqual(input);
		expect(setHint(hints, "photos", { type: "fs", path: "./other" })).toEqual({ ...input, N: 2048 });
		// The set pointed at another destination: its old key file says nothing about the new one.
		expect(setHint(hints, "docs", { type: "fs", path: "./moved" })).toBeUndefined();
		expect(setHint(hints, "music", { type: "fs", path: "./repo" })).toBeUndefined();
		expect(readConfigHints(file, `${config}.other`)).toBeUndefined();
		// Nothing secret in it: the salt and parameters a key file holds in the clear.
		expect(await readFile(file, "utf8")).not.toMatch(/master|correct horse/);
	});

	it("forgets a config's sets when its text changes", async () => {
		const { file, config } = await place();
		recordUnlock(file, config, docsOnly(), "photos", {}, input);
		recordUnlock(file, config, docsOnly({ text: textHash(Buffer.from("changed")) }), "docs", {}, input);
		expect(Object.keys(readConfigHints(file, config)?.sets ?? {})).toEqual(["docs"]);
	});

	it("keeps the 32 configs recorded last", async () => {
		const { file, dir } = await place();
		for (let i = 0; i < 40; i++) recordUnlock(file, join(dir, `config-${i}.yaml`), docsOnly(), "docs", {}, input);
		const kept = Object.keys(JSON.parse(await readFile(file, "utf8")).configs);
		expect(kept).toHaveLength(32);
		expect(kept).toContain(join(dir, "config-39.yaml"));
	});

	it("keeps a config recorded again over older ones", async () => {
		const { file, dir } = await place();
		for (let i = 0; i < 32; i++) recordUnlock(file, join(dir, `config-${i}.yaml`), docsOnly(), "docs", {}, input);
		recordUnlock(file, join(dir, "config-0.yaml"), docsOnly(), "docs", { moved: true }, input);
		recordUnlock(file, join(dir, "config-new.yaml"), docsOnly(), "docs", {}, input);
		const kept = Object.keys(JSON.parse(await readFile(file, "utf8")).configs);
		expect(kept).toContain(join(dir, "config-0.yaml"));
		expect(kept).not.toContain(join(dir, "config-1.yaml"));
		expect(kept.at(-1)).toBe(join(dir, "config-new.yaml"));
	});

	it("an entry of another shape is no hint, and is replaced by the next record", async () => {
		const { file, config } = await place();
		await mkdir(join(file, ".."), { recursive: true });
		for (const entry of [{}, { text: "t", sets: null }, { text: "t", sets: { docs: "salt" } }, { text: 1, sets: {} }]) {
			await writeFile(file, JSON.stringify({ v: 2, configs: { [config]: entry } }));
			expect(setHint(readConfigHints(file, config), "docs", {})).toBeUndefined();
			await deriveAtLaunch(["snapshots"], { XDG_CACHE_HOME: join(file, "../.."), HOLDFAST_PASSWORD: "x" }, join(config, ".."));
			expect(takeLaunchedDerivation()).toBeUndefined();
		}
		recordUnlock(file, config, docsOnly(), "docs", {}, input);
		expect(setHint(readConfigHints(file, config), "docs", {})).toEqual(input);
	});

	it("treats a damaged or hand-made file, and parameters too costly to derive ahead, as no hint", async () => {
		const { file, config } = await place();
		await mkdir(join(file, ".."), { recursive: true });
		await writeFile(file, "{ not json");
		expect(readConfigHints(file, config)).toBeUndefined();
		// A damaged file is replaced by the next write.
		recordUnlock(file, config, docsOnly(), "docs", {}, input);
		expect(setHint(readConfigHints(file, config), "docs", {})).toEqual(input);
		for (const costly of [
			{ ...input, N: 2 ** 20 },
			{ ...input, N: 1000 },
			{ ...input, p: 16 },
			{ ...input, salt: "" },
		]) {
			recordUnlock(file, config, docsOnly(), "docs", {}, costly);
			expect(setHint(readConfigHints(file, config), "docs", {})).toBeUndefined();
		}
	});

	it("a hint that cannot be written is left unwritten, without an error", async () => {
		const { dir, config } = await place();
		await writeFile(join(dir, "a-file"), "");
		const file = join(dir, "a-file", "holdfast", "unlock-hints.json");
		expect(() => recordUnlock(file, config, docsOnly(), "docs", {}, input)).not.toThrow();
		expect(readConfigHints(file, config)).toBeUndefined();
	});
});

describe("deriving at launch", () => {
	async function recorded(extra: Partial<ConfigHints> = {}) {
		const at = await place();
		recordUnlock(at.file, at.config, docsOnly(extra), "docs", {}, input);
		return at;
	}
	const expected = (password: string) => deriveKey(password, Buffer.from(input.salt, "base64"), input);

	it("starts the only set's derivation for a command that unlocks it, with the password it will read", async () => {
		const { dir, env } = await recorded();
		await deriveAtLaunch(["snapshots"], { ...env, HOLDFAST_PASSWORD: "correct horse" }, dir);
		const launched = takeLaunchedDerivation();
		expect(launched?.password).toBe("correct horse");
		expect(launched?.input).toEqual(input);
		expect(await launched?.deriving).toEqual(await expected("correct horse"));
		// Taken once.
		expect(takeLaunchedDerivation()).toBeUndefined();
	});

	it("reads the password from --password-file first, then HOLDFAST_PASSWORD, then what the config names", async () => {
		const { dir, env } = await recorded({ password: { env: "OFFICE_PASSWORD" } });
		await writeFile(join(dir, "password"), "from the file\n");
		const all = { ...env, HOLDFAST_PASSWORD: "from the environment", OFFICE_PASSWORD: "from the config" };
		await deriveAtLaunch(["--password-file", "password", "backup"], all, dir);
		expect(takeLaunchedDerivation()?.password).toBe("from the file");
		await deriveAtLaunch(["backup", "--password-file=password"], all, dir);
		expect(takeLaunchedDerivation()?.password).toBe("from the file");
		// yargs takes the camel-case name too.
		await deriveAtLaunch(["backup", "--passwordFile", "password"], all, dir);
		expect(takeLaunchedDerivation()?.password).toBe("from the file");
		await deriveAtLaunch(["--passwordFile=password", "backup"], all, dir);
		expect(takeLaunchedDerivation()?.password).toBe("from the file");
		await deriveAtLaunch(["backup"], all, dir);
		expect(takeLaunchedDerivation()?.password).toBe("from the environment");
		await deriveAtLaunch(["backup"], { ...all, HOLDFAST_PASSWORD: "" }, dir);
		expect(takeLaunchedDerivation()?.password).toBe("from the config");
		await deriveAtLaunch(["backup"], env, dir);
		expect(takeLaunchedDerivation()).toBeUndefined();
	});

	it("reads no password file that is not a regular file: a pipe gives its password once, to the command", async () => {
		const { dir, env } = await recorded();
		const fifo = join(dir, "password.fifo");
		expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
		// Opening a pipe without a writer would wait for one: this returns.
		await deriveAtLaunch(["snapshots", "--password-file", fifo], { ...env, HOLDFAST_PASSWORD: "x" }, dir);
		expect(takeLaunchedDerivation()).toBeUndefined();
	});

	it("reads no password file reached through a descriptor: on BSD and macOS it would move the command's offset", async () => {
		const { dir, env } = await recorded();
		await writeFile(join(dir, "password"), "correct horse\n");
		const fd = openSync(join(dir, "password"), "r");
		try {
			// As `--password-file /dev/stdin < password` names it: a regular file, behind a descriptor.
			await deriveAtLaunch(["snapshots", "--password-file", `/dev/fd/${fd}`], env, dir);
			expect(takeLaunchedDerivation()).toBeUndefined();
		} finally {
			closeSync(fd);
		}
		// /dev/shm holds plain files: a password kept in memory there is read as any other.
		const shm = await mkdtemp("/dev/shm/holdfast-test-");
		try {
			await writeFile(join(shm, "password"), "correct horse\n");
			await deriveAtLaunch(["snapshots", "--password-file", join(shm, "password")], env, dir);
			expect(takeLaunchedDerivation()?.password).toBe("correct horse");
		} finally {
			await rm(shm, { recursive: true, force: true });
		}
	});

	it("finds the config by --config and $HOLDFAST_CONFIG, as the command will", async () => {
		const { dir, env } = await recorded();
		const elsewhere = await mkdtemp(join(tmpdir(), "holdfast-unlock-hints-cwd-"));
		const withPassword = { ...env, HOLDFAST_PASSWORD: "x" };
		await deriveAtLaunch(["ls", "latest"], withPassword, elsewhere);
		expect(takeLaunchedDerivation()).toBeUndefined();
		await deriveAtLaunch(
			["--now", "2030-01-01", "ls", "--config", join(dir, "holdfast.yaml"), "latest"],
			withPassword,
			elsewhere,
		);
		expect(takeLaunchedDerivation()?.input).toEqual(input);
		await deriveAtLaunch(["ls", "latest"], { ...withPassword, HOLDFAST_CONFIG: join(dir, "holdfast.yaml") }, elsewhere);
		expect(takeLaunchedDerivation()?.input).toEqual(input);
	});

	it("starts nothing for help, a command that unlocks nothing, a changed config, or one of several sets", async () => {
		const { dir, env, file, config } = await recorded();
		const withPassword = { ...env, HOLDFAST_PASSWORD: "x" };
		for (const argv of [["snapshots", "--help"], ["status"], ["config", "check"], [], ["--now", "snapshots"]]) {
			await deriveAtLaunch(argv, withPassword, dir);
			expect(takeLaunchedDerivation(), argv.join(" ")).toBeUndefined();
		}
		await writeFile(config, `${CONFIG_TEXT}# edited\n`);
		await deriveAtLaunch(["snapshots"], withPassword, dir);
		expect(takeLaunchedDerivation()).toBeUndefined();
		recordUnlock(file, config, { text: textHash(await readFile(config)) }, "docs", {}, input);
		await deriveAtLaunch(["snapshots"], withPassword, dir);
		expect(takeLaunchedDerivation()).toBeUndefined();
	});
});
