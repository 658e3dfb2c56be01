import ignore, { type Ignore } from "ignore";

/**
 * gitignore matching by the `ignore` package, which remembers the answer for every path it
 * was asked about: over a million files that memory would grow without bound, so the matcher
 * is rebuilt (patterns are compiled in microseconds) every few thousand paths.
 */
export class ExcludeMatcher {
	#matcher: Ignore;
	#asked = 0;

	constructor(private readonly patterns: string[]) {
		this.#matcher = ignore().add(patterns);
	}

	/** Whether any pattern is set: without one, no path needs to be turned into text. */
	get active(): boolean {
		return this.patterns.length > 0;
	}

	ignores(path: string): boolean {
		if (this.patterns.length === 0) return false;
		if (++this.#asked % 4096 === 0) this.#matcher = ignore().add(this.patterns);
		return this.#matcher.ignores(path);
	}
}
