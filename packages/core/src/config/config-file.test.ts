import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfigFile, parseConfigText } from "./config-file.js";

const valid = `
plugins:
  - "@holdfast/plugin-fs-source"
password: { env: HOLDFAST_PASSWORD }
sets:
  office:
    sources:
      - { type: fs, path: /srv/share }
    destination: { type: fs, path: /backups/office }
    retention: { days: 90 }
    schedule: { every: 7d }
`;

describe("config file", () => {
	it("accepts the documented shape and fills defaults", () => {
		const { config } = parseConfigText(valid, "/etc/holdfast.yaml");
		expect(config.sets.office?.retention).toEqual({ days: 90, mode: "compliance" });
		expect(config.sets.office?.packSizeMiB).toBe(16);
	});

	it("reports each problem on its own line with file, line and key path", () => {
		const text = valid.replace("days: 90", "days: 12000").replace("every: 7d", "every: weekly").replace("password:", "passwd:");
		const error = (() => {
			try {
				parseConfigText(text, "/etc/holdfast.yaml");
			} catch (e) {
				return e as ConfigError;
			}
			throw new Error("no error");
		})();
		expect(error).toBeInstanceOf(ConfigError);
		expect(error.code).toBe("CONFIG_INVALID");
		expect(error.problems).toContain("/etc/holdfast.yaml:4: passwd: unknown key");
		expect(error.problems).toContain("/etc/holdfast.yaml:10: sets.office.retention.days: must be <= 9999");
		expect(error.problems.some((p) => p.startsWith("/etc/holdfast.yaml:11: sets.office.schedule"))).toBe(true);
	});

	it("gives the lines of the branch of a choice that was meant, not those of every branch", () => {
		const problems = (text: string) => {
			try {
				parseConfigText(text, "/x.yaml");
			} catch (e) {
				return (e as ConfigError).problems;
			}
			throw new Error("no error");
		};
		expect(problems(valid.replace('- "@holdfast/plugin-fs-source"', "- { uses: ./p.mjs }"))).toEqual([
			"/x.yaml:3: plugins.0: must have required property 'use'",
			"/x.yaml:3: plugins.0.uses: unknown key",
		]);
		expect(problems(valid.replace("every: 7d", "every: 7x"))).toEqual([
			'/x.yaml:11: sets.office.schedule.every: must match pattern "^[0-9]+(\\.[0-9]+)?\\s*(s|m|h|d|w)$"',
		]);
		expect(problems(valid.replace("every: 7d", "evry: 7d"))).toEqual([
			"/x.yaml:11: sets.office.schedule: must have one of every, cron",
			"/x.yaml:11: sets.office.schedule.evry: unknown key",
		]);
	});

	it("leaves a set's unknown keys to the plugins, and defers a set's problems when asked", () => {
		const owned = parseConfigText(valid.replace("schedule: { every: 7d }", "planner: { strategy: auto }"), "/x.yaml");
		expect(owned.config.sets.office?.planner).toEqual({ strategy: "auto" });
		const bad = valid.replace("days: 90", "days: 0");
		expect(() => parseConfigText(bad, "/x.yaml")).toThrow("/x.yaml:10: sets.office.retention.days: must be >= 1");
		const deferred = parseConfigText(bad, "/x.yaml", { deferSetProblems: true });
		expect(deferred.setProblems).toEqual(["/x.yaml:10: sets.office.retention.days: must be >= 1"]);
		// Outside the sets nothing waits: the plugins could not even be found.
		expect(() => parseConfigText(bad.replace("password:", "passwd:"), "/x.yaml", { deferSetProblems: true })).toThrow(
			/passwd: unknown key\n.*retention\.days/,
		);
	});

	it("says where a YAML syntax error is", () => {
		expect(() => parseConfigText("plugins: [\n  a\nsets: {", "/x.yaml")).toThrow(/^\/x\.yaml:\d+:\d+: /);
	});

	it("refuses a password written in clear", () => {
		expect(() =>
			parseConfigText(valid.replace("password: { env: HOLDFAST_PASSWORD }", 'password: "hunter2"'), "/x.yaml"),
		).toThrow(/password: must be object/);
	});

	it("names a missing file in one line", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-config-"));
		await expect(loadConfigFile(join(dir, "none.yaml"))).rejects.toThrow(/none\.yaml: cannot read config: no such file$/);
		await writeFile(
			join(dir, "ok.json"),
			JSON.stringify({
				plugins: [],
				sets: { a: { sources: [{ type: "fs" }], destination: { type: "fs" }, retention: { days: 1 } } },
			}),
		);
		expect((await loadConfigFile(join(dir, "ok.json"))).config.sets.a?.retention.days).toBe(1);
	});
});
