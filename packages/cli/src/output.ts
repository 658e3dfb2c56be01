/** stdout carries results (one JSON document with --json); stderr carries logs and progress. */
export function printJson(value: unknown): void {
	process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(line = ""): void {
	process.stdout.write(`${line}\n`);
}

/** Red only for a person at a terminal who has not asked for no colour; the words say it anyway. */
function colourWanted(): boolean {
	return process.stdout.isTTY === true && !process.env.NO_COLOR;
}

/** `alert[i]` marks row i as something to act on: red on a terminal. */
export function printTable(headers: string[], rows: string[][], options: { alert?: readonly boolean[] } = {}): void {
	const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const format = (cells: string[]) =>
		cells
			.map((c, i) => c.padEnd(widths[i] ?? 0))
			.join("  ")
			.trimEnd();
	printLine(format(headers));
	printLine(widths.map((w) => "-".repeat(w)).join("  "));
	const red = colourWanted();
	for (const [i, row] of rows.entries()) {
		printLine(red && options.alert?.[i] ? `\x1b[31m${format(row)}\x1b[0m` : format(row));
	}
}

/** Every time the CLI prints, in tables, lines and the daemon's log, is UTC and says so. */
export function day(date: Date | string | undefined): string {
	if (!date) return "-";
	return `${new Date(date).toISOString().replace("T", " ").slice(0, 16)} UTC`;
}

/** Two times as `day` shows them, unless that shows them equal: then to the second or the millisecond, so a gap is seen. */
export function daysApart(a: string | null, b: string): [string, string] {
	if (a === null || day(a) !== day(b)) return [day(a ?? undefined), day(b)];
	const precise = (time: string, length: number) => `${time.replace("T", " ").slice(0, length)} UTC`;
	const length = a.slice(0, 19) === b.slice(0, 19) ? 23 : 19;
	return [precise(a, length), precise(b, length)];
}
