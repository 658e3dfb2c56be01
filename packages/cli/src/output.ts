/** stdout carries results (one JSON document with --json); stderr carries logs and progress. */
export function printJson(value: unknown): void {
	process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(line = ""): void {
	process.stdout.write(`${line}\n`);
}

export function printTable(headers: string[], rows: string[][]): void {
	const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const format = (cells: string[]) =>
		cells
			.map((c, i) => c.padEnd(widths[i] ?? 0))
			.join("  ")
			.trimEnd();
	printLine(format(headers));
	printLine(widths.map((w) => "-".repeat(w)).join("  "));
	for (const row of rows) printLine(format(row));
}

/** Every time the CLI prints, in tables, lines and the daemon's log, is UTC and says so. */
export function day(date: Date | string | undefined): string {
	if (!date) return "-";
	return `${new Date(date).toISOString().replace("T", " ").slice(0, 16)} UTC`;
}
