import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLifecycleHooks, type HookName } from "./lifecycle-hooks.js";

/** HOOKS.md at the repository root: a `### \`name(args)\`` section per hook, each with a `**Type**` line. */
function documentedHooks(): { name: string; args: string[]; type: string | undefined }[] {
	const text = readFileSync(join(import.meta.dirname, "../../../../HOOKS.md"), "utf8");
	const section = text.slice(text.indexOf("\n## Hooks\n"));
	return section
		.split(/\n### /)
		.slice(1)
		.map((part) => {
			const heading = /^`(\w+)\(([^)]*)\)`/.exec(part);
			if (!heading) throw new Error(`HOOKS.md: a hook heading is not \`name(args)\`: ${part.split("\n")[0]}`);
			const type = /\*\*Type\*\*: `(\w+)`/.exec(part)?.[1];
			const args = (heading[2] as string).split(",").map((a) => a.trim());
			return { name: heading[1] as string, args: args.filter(Boolean), type };
		});
}

describe("HOOKS.md", () => {
	const hooks = createLifecycleHooks();
	const declared = (Object.keys(hooks) as HookName[]).map((name) => {
		const hook = hooks[name] as unknown as { _args: string[]; constructor: { name: string } };
		return { name, args: hook._args, type: hook.constructor.name };
	});
	const documented = documentedHooks();

	it("documents every hook of the hooks object, and no other, in the declared order", () => {
		expect(documented.map((h) => h.name)).toEqual(declared.map((h) => h.name));
	});

	it("gives each hook the type and argument names it is declared with", () => {
		expect(documented).toEqual(declared);
	});
});
