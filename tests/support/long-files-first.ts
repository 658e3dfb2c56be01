import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files that take longest, longest first: simulations of years of runs, the S3 tests that wait
 * for real locks to end, the fleet and kill tests, then the files of many spawned commands.
 * Vitest orders by the timings of the last run, and a clean clone (CI) has none; started late,
 * one of these would be the suite's tail.
 */
const LONG_FILES = [
	/tests\/invariant-tiers\.test\.ts$/,
	/tests\/invariant-tiers-s3\.test\.ts$/,
	/tests\/(kill-points|fault-schedules|fleet-concurrency-s3)\.test\.ts$/,
	/tests\/invariant(-\w+)?\.test\.ts$/,
	/tests\/(cli-first-week|s3-integration|unreadable|catalog-damage|fleet-concurrency|cli)\.test\.ts$/,
];

export class LongFilesFirst extends BaseSequencer {
	override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
		const rank = (file: TestSpecification) => {
			const index = LONG_FILES.findIndex((pattern) => pattern.test(file.moduleId));
			return index < 0 ? LONG_FILES.length : index;
		};
		const sorted = await super.sort(files);
		// Among files of one rank the base order (last run's timings, else size) stands: sort is stable.
		return sorted.sort((a, b) => rank(a) - rank(b));
	}
}
