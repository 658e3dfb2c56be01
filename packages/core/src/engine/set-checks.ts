import type { LoadedConfig, SetConfig } from "../config/config-types.js";
import type { Destination } from "../destination/destination.js";
import { parseDuration } from "../host/units.js";
import type { ScheduleAdvisor } from "./forecast-types.js";
import { isTimeZone, longestRetentionDays, tierProblems } from "./retention-tiers.js";

/** The shortest `schedule.every`. */
const MIN_INTERVAL_MS = 60_000;
/** The longest: ten years. Past it, dates leave what a clock can show (and no retention is that long). */
const MAX_INTERVAL_MS = 3650 * 86_400_000;

/**
 * What only the destinations know, per set of the config: its retention against the
 * destination's cap, its tiers, its schedule's time zone. One line per problem, naming the file
 * and the key.
 */
export function setProblems(
	loaded: LoadedConfig & { locate?(path: string | readonly (string | number)[]): string },
	destinationOf: (name: string, set: SetConfig) => Destination,
	advisor?: ScheduleAdvisor,
): string[] {
	const problems: string[] = [];
	// Each line starts with the file and, when the text was kept, the line of the key it names
	// (as segments: a set's name may hold a dot).
	const at = (name: string, problem: string) => {
		const key = problem.slice(0, problem.indexOf(":"));
		const rest = key.slice(`sets.${name}.`.length).replace(/\[(\d+)\]/g, ".$1");
		return `${loaded.locate?.(["sets", name, ...rest.split(".")]) ?? loaded.file}: ${problem}`;
	};
	for (const [name, set] of Object.entries(loaded.config.sets)) {
		const capProblem = retentionCapProblem(name, set, destinationOf(name, set));
		if (capProblem) problems.push(at(name, capProblem));
		for (const problem of tierProblems(set.retention, `sets.${name}.retention`)) problems.push(at(name, problem));
		const every = set.schedule && "every" in set.schedule ? set.schedule.every : undefined;
		// Each run writes a snapshot locked for the whole retention: an interval near zero would
		// write them back to back, and nothing could remove them until their locks end.
		if (every !== undefined && parseDuration(every, `sets.${name}.schedule.every`) < MIN_INTERVAL_MS) {
			problems.push(
				at(name, `sets.${name}.schedule.every: "${every}" is shorter than a minute, the shortest interval between runs`),
			);
		} else if (every !== undefined && parseDuration(every, `sets.${name}.schedule.every`) > MAX_INTERVAL_MS) {
			problems.push(
				at(name, `sets.${name}.schedule.every: "${every}" is longer than ten years, the longest interval between runs`),
			);
		}
		if (set.schedule && "cron" in set.schedule && set.schedule.tz && !isTimeZone(set.schedule.tz)) {
			problems.push(at(name, `sets.${name}.schedule.tz: "${set.schedule.tz}" is not a time zone (like Europe/Berlin)`));
		} else {
			for (const problem of advisor?.problems?.(set) ?? []) problems.push(at(name, `sets.${name}.${problem}`));
		}
	}
	return problems;
}

/** The set's longest promise against the destination's cap: the base days, or the tier that exceeds it. */
export function retentionCapProblem(setName: string, set: SetConfig, destination: Destination): string | undefined {
	const max = destination.capabilities.maxRetentionDays;
	if (longestRetentionDays(set.retention) <= max) return undefined;
	if (set.retention.days > max) {
		return `sets.${setName}.retention.days: ${set.retention.days} exceeds what ${destination.description} allows (${max} days)`;
	}
	const i = (set.retention.tiers ?? []).findIndex((t) => t.days > max);
	const tier = set.retention.tiers?.[i];
	return `sets.${setName}.retention.tiers[${i}].days: ${tier?.days} exceeds what ${destination.description} allows (${max} days)`;
}
