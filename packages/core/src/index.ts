/**
 * The public API of holdfast's core: everything a plugin may import. Plugins import this
 * module and nothing else of ours; inversify, tapable and reflect-metadata come from here,
 * so the host and every plugin share one copy.
 */
import "reflect-metadata";

export * as inversify from "inversify";
export { ContainerModule, inject, injectable, multiInject } from "inversify";
export * as tapable from "tapable";

export { type Catalog, DEFAULT_CATALOG_URI, openCatalog } from "./catalog/catalog.js";
export { SqliteKeyvStore } from "./catalog/sqlite-store.js";
export { ConfigError, DEFAULT_CONFIG_FILE, loadConfigFile, type ParsedConfig, parseConfigText } from "./config/config-file.js";
export { configSchema, fullConfigSchema, type JsonSchema, setSchema } from "./config/config-schema.js";
export type * from "./config/config-types.js";
export { type SchemaProblem, validateSchema } from "./config/schema-validator.js";
export { readSecret } from "./config/secrets.js";
export * from "./destination/destination.js";
export {
	classifyFault,
	DEFAULT_RETRY_BUDGET_MS,
	type FaultKind,
	RetryBudget,
	type RetryBudgetOptions,
	retryBudgetMs,
} from "./destination/faults.js";
export type { BackupResult } from "./engine/backup.js";
export type { CheckReport, ImmutabilityGap, IndexRecoveryReport } from "./engine/check.js";
export { Engine, type EngineOptions, type OpenSet } from "./engine/engine.js";
export * from "./engine/forecast-types.js";
export type { GroomResult } from "./engine/groom-step.js";
export {
	DEFAULT_GROOM_GRACE_HOURS,
	emptyGroomPlan,
	type GroomCandidate,
	type GroomPlan,
	groomGraceMs,
	type HeldObject,
} from "./engine/groom-types.js";
export type { IndexRepairResult } from "./engine/index-repair.js";
export { applyLockPlan } from "./engine/lock-step.js";
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
export { collectSnapshotObjects, metadataFor, pickSnapshot, type SnapshotObjects } from "./engine/snapshot-objects.js";
export { createLifecycleHooks, type EntryStream, type HookName, type LifecycleHooks, STAGE } from "./hooks/lifecycle-hooks.js";
export { Bounded } from "./host/bounded.js";
export { addDays, type Clock, DAY_MS, ManualClock, OffsetClock, SystemClock } from "./host/clock.js";
export { CORE_VERSION } from "./host/core-version.js";
export { type Disposable, DisposableStack } from "./host/disposables.js";
export { describeError, type ErrorCode, HoldfastError, isHoldfastError } from "./host/errors.js";
export { type Logger, type LogLevel, type LogSink, MemoryLogger, SinkLogger, stderrSink } from "./host/logger.js";
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
export { DEFAULT_SCRYPT, type ScryptParams } from "./repository/crypto.js";
export { FORMAT_VERSION, KEY_PREFIX } from "./repository/format.js";
export type { CondemnedObject, IndexFile, MasterIndex } from "./repository/index-file.js";
export { Repository, type RepositoryOptions } from "./repository/repository.js";
export type { Snapshot, SnapshotListing, SnapshotRef, UnreadableObject } from "./repository/snapshot.js";
export { decodeName, type Tree, type TreeNode } from "./repository/tree.js";
export * from "./source/source.js";
