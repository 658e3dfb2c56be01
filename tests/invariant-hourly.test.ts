import { describeInvariant } from "./support/invariant-scenarios.js";

/** The attacker's test of the promise (see support/invariant-scenarios.ts). Hourly runs under a one-day retention, under reinclude and under extend. */
describeInvariant("hourly");
