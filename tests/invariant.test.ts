import { describeInvariant } from "./support/invariant-scenarios.js";

/** The attacker's test of the promise (see support/invariant-scenarios.ts). A year of weekly runs under extend and under reinclude, and an 8-year retention. */
describeInvariant("weekly");
