import { basename } from "node:path";

/**
 * A snapshot's top level has one folder per source root, named after the root's last segment
 * (`/srv/share` → `share`, a second `share` → `share-2`, as the backup names them). Users type
 * the paths they know, `/srv/share/docs`; these helpers map them onto the snapshot's names.
 */
export function rootNames(roots: readonly string[]): Map<string, string> {
	const used = new Set<string>();
	const names = new Map<string, string>();
	for (const root of roots) {
		const base = basename(root) || "root";
		let name = base;
		for (let n = 2; used.has(name); n++) name = `${base}-${n}`;
		used.add(name);
		names.set(root, name);
	}
	return names;
}

/** An absolute source path becomes its snapshot path; anything else loses its outer slashes. */
export function toSnapshotPath(typed: string, roots: readonly string[]): string {
	if (typed.startsWith("/")) {
		for (const [root, name] of rootNames(roots)) {
			const bare = root.replace(/\/+$/, "");
			if (typed === bare || typed === `${bare}/`) return name;
			if (typed.startsWith(`${bare}/`)) return `${name}/${typed.slice(bare.length + 1)}`.replace(/\/+$/, "");
		}
	}
	return typed.replace(/^\/+|\/+$/g, "");
}

/** An --include glob: an absolute source path is mapped like a path, the glob part kept. */
export function toSnapshotPattern(pattern: string, roots: readonly string[]): string {
	if (!pattern.startsWith("/")) return pattern;
	const mapped = toSnapshotPath(pattern, roots);
	return mapped === pattern.replace(/^\/+|\/+$/g, "") ? pattern : mapped;
}

/** One line that tells the user what the snapshot does have at its top. */
export function describeTopLevel(names: readonly string[]): string {
	if (names.length === 0) return "the snapshot is empty";
	const shown = names.slice(0, 10).join(", ");
	return `its top level has ${shown}${names.length > 10 ? `, and ${names.length - 10} more` : ""}`;
}
