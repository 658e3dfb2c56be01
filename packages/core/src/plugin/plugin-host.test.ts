import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openCatalog } from "../catalog/catalog.js";
import { parseConfigText } from "../config/config-file.js";
import type { HoldfastConfig } from "../config/config-types.js";
import type { RunContext, RunPlan } from "../engine/run-types.js";
import { STAGE } from "../hooks/lifecycle-hooks.js";
import { ManualClock } from "../host/clock.js";
import { HoldfastError } from "../host/errors.js";
import { MemoryLogger } from "../host/logger.js";
import { definePlugin, type PluginContext, type PluginDefinition } from "./plugin-definition.js";
import { PluginHost } from "./plugin-host.js";

const baseSet = {
	sources: [{ type: "memory" }],
	destination: { type: "memory" },
	retention: { days: 30, mode: "compliance" as const },
};

async function hostFor(
	plugins: HoldfastConfig["plugins"],
	builtins: PluginDefinition[],
	dir = tmpdir(),
	catalog?: Awaited<ReturnType<typeof openCatalog>>,
) {
	const config: HoldfastConfig = { plugins, sets: { s: structuredClone(baseSet) } };
	const loaded = parseConfigText(JSON.stringify(config), join(dir, "holdfast.json"));
	catalog ??= await openCatalog("memory://", dir);
	const map = new Map(builtins.map((b) => [b.name, b]));
	return new PluginHost({ loaded, clock: new ManualClock(0), logger: new MemoryLogger(), catalog, builtins: map });
}

/** A plugin package in a new folder whose code throws if imported; its package.json says `holdfast`. */
async function packageThatMustNotLoad(name: string, holdfast: Record<string, unknown>): Promise<string> {
	const dir = await mkdtemp(join(tmpdir(), "holdfast-host-"));
	const pkg = join(dir, name);
	await mkdir(pkg);
	await writeFile(
		join(pkg, "package.json"),
		JSON.stringify({ name, version: "1.0.0", type: "module", main: "index.js", holdfast }),
	);
	await writeFile(join(pkg, "index.js"), `throw new Error("${name} was imported");\n`);
	return dir;
}

/** Declares the `memory` source and destination types so the config's sets validate. */
const typesPlugin = definePlugin({
	name: "types",
	version: "1.0.0",
	engine: "^0.1.0",
	async activate() {},
});

function typesModule() {
	return import("inversify").then(({ ContainerModule }) =>
		definePlugin({
			...typesPlugin,
			containerModule: new ContainerModule((o) => {
				o.bind(Symbol.for("holdfast.SourceType")).toConstantValue({
					type: "memory",
					optionsSchema: { type: "object" },
					create: () => ({}),
				});
				o.bind(Symbol.for("holdfast.DestinationType")).toConstantValue({
					type: "memory",
					optionsSchema: { type: "object" },
					create: () => ({}),
				});
			}),
		}),
	);
}

function tapper(name: string, stage: number, log: string[], extra: Partial<PluginDefinition> = {}): PluginDefinition {
	return definePlugin({
		name,
		version: "1.0.0",
		engine: "^0.1.0",
		...extra,
		activate(context) {
			log.push(`activate ${name}`);
			context.hooks.plan.tap({ name, stage }, (plan: RunPlan) => ({ ...plan, notes: [...plan.notes, name] }));
			context.disposables.defer(() => {
				log.push(`dispose ${name}`);
			});
		},
	});
}

const fakeContext = {} as RunContext;
const emptyPlan = (): RunPlan => ({
	lock: { mode: "compliance", until: new Date(1) },
	protectUntil: new Date(1),
	horizon: new Date(1),
	strategy: "extend",
	notes: [],
	warnings: [],
});

describe("plugin host", () => {
	it("orders taps by stage, not by the order plugins are listed in", async () => {
		const log: string[] = [];
		const types = await typesModule();
		const plugins = [
			tapper("report", STAGE.REPORT, log),
			tapper("early", STAGE.EARLY, log),
			tapper("normal", STAGE.DEFAULT, log),
			types,
		];
		const host = await hostFor(["report", "early", "normal", "types"], plugins);
		await host.start();
		const plan = await host.hooks.plan.promise(emptyPlan(), fakeContext);
		expect(plan.notes).toEqual(["early", "normal", "report"]);
		await host.dispose();
		expect(log).toEqual([
			"activate report",
			"activate early",
			"activate normal",
			"dispose normal",
			"dispose early",
			"dispose report",
		]);
	});

	it("gives each plugin a store of its own: no plugin reads another's keys, nor the core's", async () => {
		const types = await typesModule();
		const catalog = await openCatalog("memory://", tmpdir());
		await catalog.set("file:repo:set:root:a", { s: 1 });
		const stores = new Map<string, PluginContext["store"]>();
		const keeper = (name: string) =>
			definePlugin({
				name,
				version: "1.0.0",
				engine: "^0.1.0",
				activate(context) {
					stores.set(name, context.store);
				},
			});
		const host = await hostFor(
			["alpha", "beta", "a", "a:b", "types"],
			[keeper("alpha"), keeper("beta"), keeper("a"), keeper("a:b"), types],
			tmpdir(),
			catalog,
		);
		await host.start();
		const [alpha, beta, a, ab] = ["alpha", "beta", "a", "a:b"].map((n) => stores.get(n) as PluginContext["store"]) as [
			PluginContext["store"],
			PluginContext["store"],
			PluginContext["store"],
			PluginContext["store"],
		];
		await alpha.set("cursor", "alpha's");
		await beta.set("cursor", "beta's");
		expect(await alpha.get("cursor")).toBe("alpha's");
		expect(await beta.get("cursor")).toBe("beta's");
		await beta.delete("cursor");
		expect(await alpha.get("cursor")).toBe("alpha's");
		expect(await beta.has("cursor")).toBe(false);
		// A plugin cannot reach another's keys by spelling the prefix, nor the core's file states.
		expect(await beta.get("plugin:alpha:cursor")).toBeUndefined();
		expect(await beta.get("../alpha/cursor")).toBeUndefined();
		expect(await alpha.get("file:repo:set:root:a")).toBeUndefined();
		expect(await alpha.has("file:repo:set:root:a")).toBe(false);
		// Names that would run together with a separator stay apart.
		await a.set("b:x", "plugin a");
		await ab.set("x", "plugin a:b");
		expect(await a.get("b:x")).toBe("plugin a");
		expect(await ab.get("x")).toBe("plugin a:b");
		await host.dispose();
		// The same plugin finds its keys again in the next session.
		stores.clear();
		const again = await hostFor(["alpha", "types"], [keeper("alpha"), types], tmpdir(), catalog);
		await again.start();
		expect(await stores.get("alpha")?.get("cursor")).toBe("alpha's");
		await again.dispose();
	});

	it("names the plugin and the hook when a tap fails, with the cause attached", async () => {
		const types = await typesModule();
		const boom = definePlugin({
			name: "boom",
			version: "1.0.0",
			engine: "^0.1.0",
			activate(context) {
				context.hooks.beforeRun.tapPromise("anything", async () => {
					throw new Error("kaput");
				});
			},
		});
		const host = await hostFor(["boom", "types"], [boom, types]);
		await host.start();
		const error = await host.hooks.beforeRun.promise(fakeContext).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(HoldfastError);
		expect((error as Error).message).toBe("[boom] beforeRun: kaput");
		expect(((error as Error).cause as Error).message).toBe("kaput");
		await host.dispose();
	});

	it("names a plugin whose activation fails and disposes the others in reverse", async () => {
		const log: string[] = [];
		const types = await typesModule();
		const bad = definePlugin({
			name: "bad",
			version: "1.0.0",
			engine: "^0.1.0",
			activate() {
				throw new Error("nope");
			},
		});
		const host = await hostFor(
			["first", "second", "bad", "types"],
			[tapper("first", 0, log), tapper("second", 0, log), bad, types],
		);
		await expect(host.start()).rejects.toThrow("[bad] activate: nope");
		expect(log).toEqual(["activate first", "activate second", "dispose second", "dispose first"]);
	});

	it("rejects invalid options in one line before activating anything", async () => {
		const log: string[] = [];
		const types = await typesModule();
		const strict = tapper("strict", 0, log, {
			optionsSchema: { type: "object", required: ["level"], properties: { level: { type: "integer", minimum: 1 } } },
		});
		const host = await hostFor(
			["first", { use: "strict", options: { level: 0 } }, "types"],
			[tapper("first", 0, log), strict, types],
		);
		const error = (await host.start().catch((e: unknown) => e)) as HoldfastError;
		expect(error).toBeInstanceOf(HoldfastError);
		expect(error.code).toBe("PLUGIN_OPTIONS");
		expect(error.message).toBe("[strict] options: plugins.1.options.level: must be >= 1");
		expect(log).toEqual([]);
	});

	it("activates dependencies first whatever the listing order, and refuses cycles", async () => {
		const log: string[] = [];
		const types = await typesModule();
		const host = await hostFor(
			["needs", "base", "types"],
			[tapper("needs", 0, log, { dependsOn: ["base"] }), tapper("base", 0, log), types],
		);
		await host.start();
		expect(log.slice(0, 2)).toEqual(["activate base", "activate needs"]);
		await host.dispose();
		const cyclic = await hostFor(
			["a", "b", "types"],
			[tapper("a", 0, [], { dependsOn: ["b"] }), tapper("b", 0, [], { dependsOn: ["a"] }), types],
		);
		await expect(cyclic.start()).rejects.toThrow(/dependency cycle: a -> b -> a/);
	});

	it("refuses a plugin written for another core version", async () => {
		const types = await typesModule();
		const old = definePlugin({ name: "old", version: "1.0.0", engine: "^9.0.0" });
		const host = await hostFor(["old", "types"], [old, types]);
		await expect(host.start()).rejects.toThrow("[old] engine needs @holdfast/core ^9.0.0, this is 0.1.0");
	});

	it("names a source or destination type that no plugin provides, with file and line", async () => {
		const host = await hostFor([], []);
		const error = (await host.start().catch((e: unknown) => e)) as Error;
		expect(error.message).toMatch(
			/holdfast\.json:1: sets\.s\.sources\.0\.type: no plugin in "plugins" provides source type "memory"/,
		);
	});

	it("does not import a plugin whose only contributions the config does not use", async () => {
		const dir = await packageThatMustNotLoad("unused-destination", { contributes: ["destination:tape"] });
		const types = await typesModule();
		const host = await hostFor(["./unused-destination", "types"], [types], dir);
		await host.start();
		expect(host.plugins.find((p) => p.manifest.spec === "./unused-destination")?.skipped).toBe("not used by any set");
		await host.dispose();
	});

	it("tells a plugin the config's folder, for relative paths in its options", async () => {
		const types = await typesModule();
		let seen: string | undefined;
		const reader = definePlugin({
			name: "reader",
			version: "1.0.0",
			engine: "^0.1.0",
			activate(context) {
				seen = context.configDir;
			},
		});
		const dir = await mkdtemp(join(tmpdir(), "holdfast-host-"));
		const host = await hostFor(["reader", "types"], [reader, types], dir);
		await host.start();
		expect(seen).toBe(dir);
		await host.dispose();
	});

	it("refuses a package whose holdfast.engine excludes this core before importing its code", async () => {
		const dir = await packageThatMustNotLoad("future-plugin", { engine: "^9.0.0" });
		const types = await typesModule();
		const host = await hostFor(["./future-plugin", "types"], [types], dir);
		await expect(host.start()).rejects.toThrow(
			"plugin ./future-plugin: package.json holdfast.engine needs @holdfast/core ^9.0.0, this is 0.1.0",
		);
	});

	describe("set keys a plugin owns", () => {
		const owner = (log: string[]) =>
			tapper("owner", 0, log, {
				setKeys: {
					tidy: {
						type: "object",
						additionalProperties: false,
						default: {},
						properties: { level: { type: "integer", minimum: 1, default: 2 }, after: { type: "boolean" } },
					},
				},
			});
		const yamlHost = async (setLines: string, builtins: PluginDefinition[]) => {
			const text = [
				"plugins: [owner, types]",
				"sets:",
				"  s:",
				"    sources: [{ type: memory }]",
				"    destination: { type: memory }",
				"    retention: { days: 30 }",
				setLines,
			].join("\n");
			const loaded = parseConfigText(text, "/etc/holdfast.yaml");
			const catalog = await openCatalog("memory://", tmpdir());
			const map = new Map(builtins.map((b) => [b.name, b]));
			const host = new PluginHost({ loaded, clock: new ManualClock(0), logger: new MemoryLogger(), catalog, builtins: map });
			return { host, set: loaded.config.sets.s as Record<string, unknown> };
		};

		it("fills the owner's defaults into every set before activation, the key absent or partly given", async () => {
			const types = await typesModule();
			const absent = await yamlHost("", [owner([]), types]);
			await absent.host.start();
			expect(absent.set.tidy).toEqual({ level: 2 });
			expect(absent.host.schemas().setKeys.has("tidy")).toBe(true);
			await absent.host.dispose();
			const partly = await yamlHost("    tidy: { after: true }", [owner([]), types]);
			await partly.host.start();
			expect(partly.set.tidy).toEqual({ level: 2, after: true });
			await partly.host.dispose();
		});

		it("reports a bad value and a key no plugin owns, each with file and line, and activates nothing", async () => {
			const log: string[] = [];
			const types = await typesModule();
			const { host } = await yamlHost("    tidy: { level: 0, speed: 3 }\n    sweep: { daily: true }", [owner(log), types]);
			const error = (await host.start().then(
				() => undefined,
				(e: unknown) => e as HoldfastError,
			)) as HoldfastError;
			expect(error.code).toBe("CONFIG_INVALID");
			expect(error.message.split("\n")).toEqual([
				'/etc/holdfast.yaml:8: sets.s.sweep: unknown key (no plugin in "plugins" owns it)',
				"/etc/holdfast.yaml:7: sets.s.tidy.speed: unknown key",
				"/etc/holdfast.yaml:7: sets.s.tidy.level: must be >= 1",
			]);
			expect(log).toEqual([]);
		});

		it("refuses a set key two plugins claim, or one the core owns", async () => {
			const clash = definePlugin({ ...(await typesModule()), setKeys: { tidy: { type: "object" } } });
			const both = await yamlHost("", [owner([]), clash]);
			await expect(both.host.start()).rejects.toThrow('[types] set key "tidy" belongs to plugin owner already');
			const core = definePlugin({ ...(await typesModule()), setKeys: { retention: { type: "object" } } });
			const stolen = await yamlHost("", [owner([]), core]);
			await expect(stolen.host.start()).rejects.toThrow('[types] set key "retention" belongs to the core already');
		});
	});
});
