import { describeInvariant } from "./support/invariant-scenarios.js";

/** The attacker's test of the promise (see support/invariant-scenarios.ts). Retention and strategy changed between runs, missed runs, and monthly cron runs. */
describeInvariant("changes");
