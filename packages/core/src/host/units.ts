import { HoldfastError } from "./errors.js";

const UNIT_MS: Record<string, number> = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8, y: 3.1536e10 };

/** `7d`, `12h`, `1.5w`, `365d` → milliseconds. */
export function parseDuration(text: string, where = "duration"): number {
	const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdwy])\s*$/.exec(text);
	if (!match) throw new HoldfastError("USAGE", `${where}: "${text}" is not a duration (like 7d, 12h, 2w)`);
	return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

export function formatBytes(bytes: number): string {
	const units = ["B", "KiB", "MiB", "GiB", "TiB"];
	let value = bytes;
	let unit = 0;
	while (value >= 1024 && unit < units.length - 1) {
		value /= 1024;
		unit++;
	}
	return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
