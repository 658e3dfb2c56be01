import { describeInvariant } from "./support/invariant-scenarios.js";

/** The attacker's test of the promise (see support/invariant-scenarios.ts). Daily cron runs across both daylight-saving changes, under reinclude and under extend. */
describeInvariant("dst");
