/** Test helpers for plugin authors: `import { destinationConformance } from "@holdfast/core/testing"`. */

export { attackerView } from "./attacker-view.js";
export { type ConformanceSubject, destinationConformance } from "./destination-conformance.js";
export { MemoryDestination } from "./memory-destination.js";
