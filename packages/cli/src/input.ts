import { UsageError } from "./usage-error.js";

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * An ISO date or time, checked field by field: `new Date()` alone turns 2027-02-30 into
 * March 2nd and "" into nothing, both of which would silently run at the wrong time.
 */
export function parseIsoTime(value: unknown, flag: string): Date {
	const text = String(value ?? "").trim();
	const fail = (why: string) => new UsageError(`${flag}: "${String(value ?? "")}" ${why}`);
	const match = ISO_TIME.exec(text);
	if (!match) throw fail("is not an ISO time (like 2027-03-01 or 2027-03-01T02:00:00Z)");
	const [year, month, dayOfMonth, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map((n) => Number(n ?? 0));
	if (month < 1 || month > 12) throw fail("has no such month");
	const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
	if (dayOfMonth < 1 || dayOfMonth > daysInMonth) throw fail(`has no such day: that month has ${daysInMonth} days`);
	if (hour > 23 || minute > 59 || second > 59) throw fail("has no such time of day");
	// A time without a zone is UTC, the zone every time the CLI prints is in.
	const zone = (match[7] ?? "Z").toUpperCase().replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
	const pad = (n: number) => String(n).padStart(2, "0");
	const date = new Date(`${match[1]}-${match[2]}-${match[3]}T${pad(hour)}:${pad(minute)}:${pad(second)}${zone}`);
	if (Number.isNaN(date.getTime())) throw fail("is not an ISO time");
	return date;
}

export function parseOptionalIsoTime(value: unknown, flag: string): Date | undefined {
	return value === undefined ? undefined : parseIsoTime(value, flag);
}

/** A number in [min, max]; yargs turns "abc" into NaN, which must not reach arithmetic. */
export function parseNumberIn(value: unknown, flag: string, min: number, max: number, unit = ""): number {
	// Decimal only, with an optional "%": Number() would also take "0x10" as 16 and "1e2" as 100.
	const text = String(value ?? "")
		.trim()
		.replace(/%$/, "");
	const number = typeof value === "number" ? value : /^\d+(\.\d+)?$|^\.\d+$/.test(text) ? Number(text) : Number.NaN;
	if (!Number.isFinite(number) || number < min || number > max) {
		throw new UsageError(`${flag}: "${String(value)}" is not a number from ${min} to ${max}${unit}`);
	}
	return number;
}

/** A non-empty string option: `--target ""` is a mistake, not "the current folder". */
export function parseNonEmpty(value: unknown, flag: string): string {
	const text = String(value ?? "");
	if (text.trim() === "") throw new UsageError(`${flag}: needs a value`);
	return text;
}
