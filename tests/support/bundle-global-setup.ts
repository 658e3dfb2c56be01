// The CLI tests run the bundled binary: after a bare `tsc -b` the bundle would be older than
// what tsc just built, so it is brought up to date (in well under a second) before any test.
import { bundle } from "../../scripts/bundle.mjs";

export default async function setup(): Promise<void> {
	await bundle({ ifStale: true });
}
