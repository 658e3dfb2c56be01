/**
 * Test helpers: `import { destinationConformance } from "@holdfast/core/testing"`. For plugin
 * authors, the conformance suite, an in-memory destination and logger, and the attacker's view;
 * the rest (`Repository`, `collectSnapshotObjects`, `metadataFor`) are the core's internals its
 * own tests reach into, not for plugins (they read the repository through `RepositoryView`).
 */

export { ParentTrees } from "../engine/backup/parent-trees.js";
export { collectSnapshotObjects, metadataFor } from "../engine/snapshot-objects.js";
export { MemoryLogger } from "../host/logger.js";
export { BlobReader } from "../repository/blob-reader.js";
export { IndexStore } from "../repository/index-store.js";
export { Repository, type RepositoryOptions } from "../repository/repository.js";
export { attackerView } from "./attacker-view.js";
export { type ConformanceSubject, destinationConformance } from "./destination-conformance.js";
export { MemoryDestination, MemoryStore } from "./memory-destination.js";
