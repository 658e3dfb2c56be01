/**
 * The public API of holdfast's core: what a plugin may import (definitions, hooks, run and
 * plan types, the destination and source contracts, the repository view) and what a host such
 * as the CLI needs to run them (config, plugin host, engine). Plugins import this module and
 * nothing else of ours; inversify, tapable and reflect-metadata come from here, so the host and
 * every plugin share one copy. Test helpers live in `@holdfast/core/testing`.
 */
import "reflect-metadata";

export * as inversify from "inversify";
export { ContainerModule, inject, injectable, multiInject } from "inversify";
export * as tapable from "tapable";

export { type Catalog, catalogFile, DEFAULT_CATALOG_URI, openCatalog } from "./catalog/catalog.js";
export {
	DEFAULT_CONFIG_FILE,
	loadConfigFile,
	type ParsedConfig,
	type ParseOptions,
	parseConfigText,
} from "./config/config-file.js";
export { fullConfigSchema, type JsonSchema, type SchemaContributions } from "./config/config-schema.js";
export type * from "./config/config-types.js";
export { schemaDefaults } from "./config/schema-validator.js";
export { looksLikeSecret, readSecret, SECRET_AS_NAME } from "./config/secrets.js";
export { composeDestination } from "./destination/compose.js";
export * from "./destination/destination.js";
export { DestinationWrapper } from "./destination/destination-wrapper.js";
export * from "./destination/doctor.js";
export { classifyFault, type FaultKind, RetryBudget, type RetryBudgetOptions, retryBudgetMs } from "./destination/faults.js";
export { EmulatedLocks, emulateLocks, type LockRecordStore } from "./destination/lock-emulation.js";
export { RetryingDestination, type RetryOptions, retryTransientFaults } from "./destination/retry.js";
export type { BackupResult } from "./engine/backup.js";
export type { CheckReport, ImmutabilityGap, IndexRecoveryReport } from "./engine/check.js";
export { type DoctorReport, Engine, type EngineOptions, type OpenSet, type PickedSnapshot } from "./engine/engine.js";
export * from "./engine/forecast-types.js";
export type { GroomResult } from "./engine/groom-step.js";
export type { GroomCandidate, GroomPlan, GroomSchedule, HeldObject } from "./engine/groom-types.js";
export type { IndexRepairResult } from "./engine/index-repair.js";
export type {
	DestinationView,
	IndexSummary,
	RepositoryView,
	StoredObject,
} from "./engine/repository-view.js";
export type { RestoreSummary } from "./engine/restore.js";
export {
	calendarPeriod,
	isTimeZone,
	longestRetentionDays,
	type SnapshotTier,
	snapshotTier,
	tierProblems,
	tierTimeZone,
} from "./engine/retention-tiers.js";
export type * from "./engine/run-types.js";
export type { HostProtection, SetProtection } from "./engine/set-protection.js";
export type { ListedSnapshot } from "./engine/snapshot-entries.js";
export type { SnapshotObjects } from "./engine/snapshot-objects.js";
export { createLifecycleHooks, type EntryStream, type HookName, type LifecycleHooks, STAGE } from "./hooks/lifecycle-hooks.js";
export { addDays, type Clock, DAY_MS, ManualClock, OffsetClock, SystemClock } from "./host/clock.js";
export { type Disposable, DisposableStack } from "./host/disposables.js";
export { describeError, type ErrorCode, HoldfastError, isHoldfastError } from "./host/errors.js";
export { makeFolders, makeFoldersSync } from "./host/folders.js";
export { type Logger, type LogLevel, type LogSink, SinkLogger } from "./host/logger.js";
export { TOKENS } from "./host/tokens.js";
export { formatBytes, parseDuration } from "./host/units.js";
export {
	type DestinationType,
	definePlugin,
	type InstanceEnvironment,
	type PluginContext,
	type PluginDefinition,
	type PluginStore,
	type SourceType,
} from "./plugin/plugin-definition.js";
export { type LoadedPlugin, PluginHost, type PluginHostOptions } from "./plugin/plugin-host.js";
export { type PluginManifest, resolvePluginManifest } from "./plugin/plugin-manifest.js";
export { EarlyKeyDerivations } from "./repository/early-key.js";
export { KEY_PREFIX } from "./repository/format.js";
export type { KeyDerivationInput, ScryptParams } from "./repository/key-derivation.js";
export type { Snapshot, SnapshotListing, SnapshotRef, UnreadableObject } from "./repository/snapshot.js";
export { decodeName, type Tree, type TreeNode } from "./repository/tree.js";
export { type TreeEntry, type TreeVisitor, walkTree } from "./repository/tree-walker.js";
export * from "./source/source.js";
