import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
	ContainerModule,
	type Destination,
	type DestinationType,
	definePlugin,
	isHoldfastError,
	type KeyRole,
	type PluginDefinition,
	TOKENS,
} from "@holdfast/core";
import { MemoryDestination } from "@holdfast/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";

/** Which key each call was made with. */
const calls: string[] = [];

/** One store seen through a key: the backup key's powers are the test's to choose; the groom key may delete. */
function throughKey(store: MemoryDestination, role: KeyRole, canDelete: boolean): Destination {
	return new Proxy(store, {
		get(target, prop) {
			if (prop === "inspectAccess") return async () => ({ canDelete, canBypassGovernance: false, how: "the test's say-so" });
			if (prop === "withKey")
				return (other: KeyRole) => (other === "groom" && role === "backup" ? throughKey(store, "groom", true) : undefined);
			const value = Reflect.get(target, prop, target);
			if (typeof value !== "function") return value;
			return (...args: unknown[]) => {
				if (typeof prop === "string" && ["put", "get", "deleteVersion"].includes(prop)) calls.push(`${role}:${prop}`);
				return value.apply(target, args);
			};
		},
	});
}

const stores: MemoryDestination[] = [];
const keyedType: DestinationType<{ canDelete?: boolean }> = {
	type: "keyed",
	optionsSchema: { type: "object", properties: { canDelete: { type: "boolean" } } },
	create: (options, environment) => {
		const store = new MemoryDestination(environment.clock);
		stores.push(store);
		return throughKey(store, "backup", options.canDelete ?? false);
	},
};
const keyed = definePlugin({
	name: "keyed-destination",
	version: "0.1.0",
	engine: "^0.1.0",
	containerModule: new ContainerModule((o) => {
		o.bind(TOKENS.DestinationType).toConstantValue(keyedType);
	}),
}) as PluginDefinition;

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
	calls.length = 0;
});

async function setUp(canDelete: boolean, afterBackup = false): Promise<Harness> {
	harness = await createHarness({
		plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-groom", "keyed-destination"],
		extraBuiltins: new Map([["keyed-destination", keyed]]),
		sets: (dir) => ({
			main: setConfig(dir, {
				destination: { type: "keyed", canDelete },
				groom: { match: "retention", afterBackup },
			}),
		}),
	});
	await writeFile(join(harness.dir, "src/a.txt"), "a\n");
	await harness.engine.init("main");
	return harness;
}

describe("keys per command class", () => {
	it("a backup key that can delete: a warning on every run, and --strict-keys refuses before writing", async () => {
		const { engine, logger } = await setUp(true);
		for (let run = 0; run < 2; run++) await engine.backup("main");
		const warnings = logger.lines.filter((l) => l.level === "warn").map((l) => l.line);
		expect(warnings).toEqual([
			'warning: main: the key backing up to memory: can delete (the test\'s say-so): give backups a key that cannot (destination.credentials.backup; "holdfast doctor" shows what a key may do)',
			'warning: main: the key backing up to memory: can delete (the test\'s say-so): give backups a key that cannot (destination.credentials.backup; "holdfast doctor" shows what a key may do)',
		]);
		const puts = stores[stores.length - 1]?.calls.put;
		const refused = await engine.backup("main", { strictKeys: true }).catch((error: unknown) => error);
		expect(isHoldfastError(refused, "DESTINATION_UNSAFE")).toBe(true);
		expect((refused as Error).message).toMatch(/; refused by --strict-keys$/);
		expect(stores[stores.length - 1]?.calls.put).toBe(puts);
		expect(await engine.snapshots("main")).toHaveLength(2);
	});

	it("a backup key that cannot delete: no warning, and --strict-keys runs", async () => {
		const { engine, logger } = await setUp(false);
		await engine.backup("main", { strictKeys: true });
		expect(logger.lines.filter((l) => l.level === "warn")).toEqual([]);
	});

	it("groom works through the groom key; backup, check and restore never touch it", async () => {
		const { engine, dir } = await setUp(false);
		await engine.backup("main");
		await engine.check("main", { readDataPercent: 100 });
		await engine.restore("latest", { setName: "main", target: join(dir, "out") });
		expect(calls.filter((c) => c.startsWith("groom:"))).toEqual([]);
		await engine.groom("main");
		expect(calls.filter((c) => c.startsWith("groom:")).length).toBeGreaterThan(0);
		expect(calls.filter((c) => c.startsWith("backup:") && c.endsWith("deleteVersion"))).toEqual([]);
	});

	it("doctor without a destination doctor reports the preflight, and warns when backups groom with the groom key", async () => {
		const { engine } = await setUp(false, true);
		const report = await engine.doctor("main");
		expect(report.findings).toEqual([
			{ check: "destination", status: "ok", detail: "preflight passed" },
			{
				check: "groom.afterBackup",
				status: "warn",
				detail:
					"each backup grooms with the groom key, so the backed-up machine holds a key that can delete: groom from another machine instead",
			},
		]);
		expect(report.verdict).toBe("warn");
	});
});
