import { hostname } from "node:os";
import type { Catalog } from "../catalog/catalog.js";
import type { LoadedConfig, SetConfig } from "../config/config-types.js";
import { composeDestination } from "../destination/compose.js";
import type { Destination, ObjectLock } from "../destination/destination.js";
import {
	type DoctorFinding,
	type DoctorVerdict,
	doctorVerdict,
	findingsFromPreflight,
	type KeyRole,
	proveProviderLocks,
} from "../destination/doctor.js";
import { DryRunDestination, readOnlyCatalog } from "../destination/dry-run.js";
import { retryBudgetMs } from "../destination/faults.js";
import { addDays, type Clock } from "../host/clock.js";
import { HoldfastError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import { TOKENS } from "../host/tokens.js";
import type { PluginHost } from "../plugin/plugin-host.js";
import type { EarlyKeyDerivations } from "../repository/early-key.js";
import type { KeyDerivationInput, ScryptParams } from "../repository/key-derivation.js";
import { Repository, type RepositoryOptions } from "../repository/repository.js";
import type { SnapshotListing, SnapshotRef } from "../repository/snapshot.js";
import type { TreeEntry } from "../repository/tree-walker.js";
import type { Source } from "../source/source.js";
import type { BackupResult } from "./backup.js";
import type { CheckReport } from "./check.js";
import type { ScheduleAdvisor } from "./forecast-types.js";
import type { GroomResult } from "./groom-step.js";
import { emptyGroomPlan, type GroomSchedule } from "./groom-types.js";
import type { IndexRepairResult } from "./index-repair.js";
import { frozenCopy, type RepositoryView, repositoryView } from "./repository-view.js";
import type { RestoreSummary } from "./restore.js";
import { type SnapshotTier, snapshotTier, tierTimeZone } from "./retention-tiers.js";
import type { RunContext, RunKind, RunPlan, UploadedObject } from "./run-types.js";
import { retentionCapProblem, setProblems } from "./set-checks.js";
import { type SetProtection, setProtection } from "./set-protection.js";
import { type ListedSnapshot, type SnapshotContents, snapshotEntries } from "./snapshot-entries.js";
import { pickSnapshot } from "./snapshot-objects.js";

/**
 * Backup, restore, check, groom and index repair, each imported by the command that runs it:
 * `snapshots`, `ls` and the rest do not parse their code as they start. Every such import is
 * here, so that `loadCommands` loads them all.
 */
const COMMANDS = {
	backup: () => import("./backup.js"),
	restore: () => import("./restore.js"),
	check: () => import("./check.js"),
	groom: () => import("./groom-step.js"),
	repairIndex: () => import("./index-repair.js"),
};

/** A snapshot `list` picked, and the repository it was read from. */
export interface PickedSnapshot {
	readonly snapshot: SnapshotRef;
	readonly open: OpenSet;
}

export interface EngineOptions {
	readonly host: PluginHost;
	readonly loaded: LoadedConfig;
	readonly clock: Clock;
	readonly logger: Logger;
	readonly catalog: Catalog;
	/** Asked only when a repository is opened. */
	readonly password: () => Promise<string>;
	readonly env?: NodeJS.ProcessEnv;
	readonly scrypt?: ScryptParams;
	/** Key derivations the host started before the set's plugins were loaded. */
	readonly earlyKeys?: EarlyKeyDerivations;
	/** Told which key file (its salt and parameters) opened a set, for the next start to derive ahead. */
	readonly onUnlocked?: (setName: string, unlockedWith: KeyDerivationInput) => void;
}

export interface OpenSet {
	readonly name: string;
	readonly set: SetConfig;
	readonly destination: Destination;
	readonly repository: Repository;
	/** What the run's hooks see of `repository`. */
	readonly view: RepositoryView;
}

export interface DoctorReport {
	readonly set: string;
	readonly destination: string;
	readonly findings: DoctorFinding[];
	readonly verdict: DoctorVerdict;
}

/** Runs backup, restore, check, plan and groom for the sets of a config, through the hooks. */
export class Engine {
	readonly #destinations = new Map<string, Destination>();
	readonly #repositories = new Map<string, Promise<Repository>>();

	constructor(readonly options: EngineOptions) {}

	get hooks() {
		return this.options.host.hooks;
	}

	/** The name this machine's snapshots record: config `host`, else the machine's hostname. */
	hostName(): string {
		return this.options.loaded.config.host ?? hostname();
	}

	setNames(): string[] {
		return Object.keys(this.options.loaded.config.sets);
	}

	/** The named set, or the only one when no name is given. */
	resolveSet(name?: string): { name: string; set: SetConfig } {
		const sets = this.options.loaded.config.sets;
		if (name === undefined) {
			const names = Object.keys(sets);
			if (names.length !== 1)
				throw new HoldfastError("USAGE", `the config has ${names.length} sets (${names.join(", ")}): name one`);
			name = names[0] as string;
		}
		const set = sets[name];
		if (!set) throw new HoldfastError("USAGE", `no set "${name}" in ${this.options.loaded.file}`);
		return { name, set };
	}

	/**
	 * The set's destination, with the key of `role`: grooming may have a key of its own that can
	 * delete, which nothing else uses. The same object when the role has no key of its own.
	 */
	destinationFor(setName: string, set: SetConfig, role: KeyRole = "backup"): Destination {
		if (role !== "backup") {
			const base = this.destinationFor(setName, set);
			const cacheKey = `${setName}\0${role}`;
			let keyed = this.#destinations.get(cacheKey);
			if (!keyed) {
				keyed = base.withKey?.(role);
				if (!keyed) return base;
				this.#destinations.set(cacheKey, keyed);
			}
			return keyed;
		}
		let destination = this.#destinations.get(setName);
		if (!destination) {
			const type = this.options.host.destinationTypes().get(set.destination.type);
			if (!type)
				throw new HoldfastError(
					"CONFIG_INVALID",
					`sets.${setName}.destination: no plugin provides type "${set.destination.type}"`,
				);
			const store = type.create(set.destination, this.#environment());
			destination = composeDestination(store, { ...this.#environment(), retryBudgetMs: this.#retryBudgetMs(setName, set) });
			this.#destinations.set(setName, destination);
		}
		return destination;
	}

	sourcesFor(set: SetConfig, setName?: string): Source[] {
		const types = this.options.host.sourceTypes();
		const local = setName === undefined ? undefined : this.destinationFor(setName, set).localFolder;
		const environment = { ...this.#environment(), ...(local ? { leaveOut: [local] } : {}) };
		return set.sources.map((options) => {
			const type = types.get(options.type);
			if (!type) throw new HoldfastError("CONFIG_INVALID", `no plugin provides source type "${options.type}"`);
			return type.create(options, environment);
		});
	}

	#environment() {
		return {
			clock: this.options.clock,
			logger: this.options.logger,
			configDir: this.options.loaded.dir,
			env: this.options.env ?? process.env,
		};
	}

	#retryBudgetMs(setName: string, set: SetConfig): number {
		return retryBudgetMs(set.retryBudget, this.options.env ?? process.env, `sets.${setName}.retryBudget`);
	}

	/** A dry run's repository announces no upload and caches nothing: its destination stores nothing. */
	#repositoryOptions(destination: Destination, set: SetConfig, setName: string, run = { dryRun: false }): RepositoryOptions {
		return {
			destination,
			clock: this.options.clock,
			logger: this.options.logger,
			catalog: run.dryRun ? readOnlyCatalog(this.options.catalog) : this.options.catalog,
			packSize: (set.packSizeMiB ?? 16) * 1024 * 1024,
			compression: set.compression !== "off",
			...(run.dryRun ? {} : { onObjectWritten: (object: UploadedObject) => this.hooks.didUploadObject.call(object, setName) }),
			...(this.options.scrypt ? { scrypt: this.options.scrypt } : {}),
			...(this.options.earlyKeys ? { earlyKeys: this.options.earlyKeys } : {}),
		};
	}

	/** The lock a set's new objects get by default: now + retention, checked against the destination's cap. */
	defaultLock(setName: string, set: SetConfig, destination: Destination, now: Date, days = set.retention.days): ObjectLock {
		const problem = retentionCapProblem(setName, set, destination);
		if (problem) throw new HoldfastError("CONFIG_INVALID", problem);
		return { mode: set.retention.mode ?? "compliance", until: addDays(now, days) };
	}

	/** The tier a snapshot of the set taken at `time` belongs to, against the snapshots listed now. */
	tierOf(setName: string, set: SetConfig, snapshots: readonly SnapshotRef[], time: Date): SnapshotTier {
		const earlier = snapshots.filter((r) => r.snapshot.set === setName).map((r) => new Date(r.snapshot.time));
		return snapshotTier(set.retention, time, earlier, tierTimeZone(set.schedule));
	}

	async init(setName?: string): Promise<{ created: boolean; notes: string[] }> {
		const { name, set } = this.resolveSet(setName);
		const destination = this.destinationFor(name, set);
		const check = await destination.preflight({
			mode: set.retention.mode ?? "compliance",
			create: true,
		});
		if (!check.ok) throw new HoldfastError("DESTINATION_UNSAFE", check.problems.join("; "));
		if (await Repository.exists(destination))
			return { created: false, notes: [...check.notes, `repository exists at ${destination.description}`] };
		// Config and key copies are locked as a backup at this instant would lock what it writes,
		// so the first backup has nothing of them to renew. Planning needs only the destination.
		const planning = {
			kind: "init",
			setName: name,
			set,
			startedAt: this.options.clock.now(),
			dryRun: false,
			// Before init there is no repository: a plan tap reads only its destination.
			repository: {
				destination: Object.freeze({ description: destination.description, capabilities: frozenCopy(destination.capabilities) }),
			} as RepositoryView,
			logger: this.options.logger,
			signal: this.options.host.signal,
		} satisfies RunContext;
		const { lock } = await this.plan(planning, destination);
		const created = await Repository.init(await this.options.password(), lock, this.#repositoryOptions(destination, set, name));
		// The first backup derives its key while it loads, as every later command does.
		if (created.unlockedWith) this.options.onUnlocked?.(name, created.unlockedWith);
		return { created: true, notes: check.notes };
	}

	/**
	 * `blobs: false` loads the index without blob locations, for commands that read no blob.
	 * `dryRun` opens the set through a `DryRunDestination`: its runs read the store and never write it.
	 */
	async open(
		setName?: string,
		options: { preflight?: boolean; role?: KeyRole; blobs?: boolean; dryRun?: boolean } = {},
	): Promise<OpenSet> {
		const { name, set } = this.resolveSet(setName);
		const keyed = this.destinationFor(name, set, options.role);
		// A repository opened with another key is another connection to the same repository; a dry run's is another.
		const connection = keyed === this.destinationFor(name, set) ? name : `${name}\0${options.role}`;
		const cacheKey = options.dryRun ? `${connection}\0dry-run` : connection;
		if (options.preflight) {
			const check = await keyed.preflight({
				mode: set.retention.mode ?? "compliance",
				create: false,
			});
			if (!check.ok) throw new HoldfastError("DESTINATION_UNSAFE", check.problems.join("; "));
		}
		// The password unlocks a repository once per session (scrypt is slow on purpose); the
		// index is read again for every run, since other hosts and grooming change it.
		let opening = this.#repositories.get(cacheKey);
		if (!opening) {
			opening = this.options
				.password()
				.then((password) =>
					Repository.open(
						password,
						options.dryRun
							? this.#repositoryOptions(new DryRunDestination(keyed), set, name, { dryRun: true })
							: this.#repositoryOptions(keyed, set, name),
					),
				);
			this.#repositories.set(cacheKey, opening);
			opening.then(
				({ unlockedWith }) => unlockedWith && this.options.onUnlocked?.(name, unlockedWith),
				() => this.#repositories.delete(cacheKey),
			);
		}
		const repository = await opening;
		await repository.loadIndex(options.blobs === false ? { blobs: false } : {});
		return { name, set, destination: repository.destination, repository, view: repositoryView(repository) };
	}

	context(kind: RunKind, open: OpenSet, dryRun = false, signal?: AbortSignal): RunContext {
		return {
			kind,
			setName: open.name,
			set: open.set,
			startedAt: this.options.clock.now(),
			dryRun,
			repository: open.view,
			logger: this.options.logger,
			signal: signal ?? this.options.host.signal,
		};
	}

	/** Runs `body` between the run-level hooks; `failed` sees any error, which is then rethrown. */
	async run<T>(context: RunContext, body: () => Promise<T>): Promise<T> {
		try {
			await this.hooks.validate.promise(context);
			await this.hooks.beforeRun.promise(context);
			const result = await body();
			await this.hooks.afterRun.promise(context, result);
			return result;
		} catch (error) {
			await this.hooks.failed.promise(context, error as Error).catch(() => undefined);
			throw error;
		}
	}

	/** The plan for a run starting at the context's time: the core's default, then the `plan` taps; kept on the context. */
	async plan(context: RunContext, destination: Destination, previousRun?: Date, tier?: SnapshotTier): Promise<RunPlan> {
		const lock = this.defaultLock(context.setName, context.set, destination, context.startedAt, tier?.days);
		const initial: RunPlan = {
			lock,
			protectUntil: lock.until,
			...(tier?.tier ? { tier: tier.tier } : {}),
			horizon: lock.until,
			strategy: destination.capabilities.lockExtension ? "extend" : "reinclude",
			...(previousRun ? { previousRun } : {}),
			notes: [],
			warnings: [],
		};
		const plan = await this.hooks.plan.promise(initial, context);
		// The tier's promise is the core's: no plan may shorten it.
		if (plan.protectUntil.getTime() < initial.protectUntil.getTime()) {
			throw new HoldfastError("LOCK_SHORTEN", "plan: the snapshot would be protected for less than its retention tier");
		}
		if (plan.lock.until.getTime() < plan.protectUntil.getTime()) {
			throw new HoldfastError("LOCK_SHORTEN", "plan: new objects would be locked for less than the snapshot's retention");
		}
		// Compliance cannot be lifted by anyone, governance by a key with the bypass right: no plan
		// may trade the one the config asks for for the weaker.
		if (initial.lock.mode === "compliance" && plan.lock.mode !== "compliance") {
			throw new HoldfastError(
				"LOCK_SHORTEN",
				`plan: new objects would be locked in ${plan.lock.mode} mode where the config asks for compliance`,
			);
		}
		// The tier is the core's too: what a snapshot records is decided here, not by a tap.
		const { tier: _tier, ...decided } = plan;
		const final: RunPlan = plan.tier === initial.tier ? plan : { ...decided, ...(initial.tier ? { tier: initial.tier } : {}) };
		// The run carries its plan to the hooks that follow (`lock`, `afterRun`); only the core sets it.
		(context as { plan?: RunPlan }).plan = final;
		return final;
	}

	/**
	 * One backup run. `dryRun` (`backup --dry-run`, `holdfast plan`) takes the same steps, reading
	 * and chunking every new or changed file, through a destination that stores nothing: its
	 * counts are those of a real run now, and nothing is written.
	 */
	async backup(
		setName?: string,
		options: {
			signal?: AbortSignal;
			fileConcurrency?: number;
			dryRun?: boolean;
			at?: Date;
			strictKeys?: boolean;
			/** Every file read, as if nothing were known of it (`backup --reread`). */
			reread?: boolean;
		} = {},
	): Promise<BackupResult> {
		const open = await this.open(setName, { preflight: !options.dryRun, dryRun: options.dryRun ?? false });
		if (!options.dryRun) await this.#refuseOrWarnKey(open, options.strictKeys ?? false);
		const context = {
			...this.context(options.dryRun ? "plan" : "backup", open, options.dryRun ?? false, options.signal),
			...(options.at ? { startedAt: options.at } : {}),
		};
		const result = await this.run(context, async () => {
			const listing = await open.repository.readSnapshots();
			for (const lost of listing.unreadable) {
				this.options.logger.warn(`${lost.key}: ${lost.reason}; what only it needs cannot be kept protected`);
			}
			const snapshots = listing.refs;
			// Missed runs are this machine's: another host's backup of the set does not stand in for it.
			const host = this.hostName();
			const previous = snapshots
				.filter(
					(r) => r.snapshot.set === open.name && r.snapshot.host === host && r.snapshot.time < context.startedAt.toISOString(),
				)
				.at(-1);
			const tier = this.tierOf(open.name, open.set, snapshots, context.startedAt);
			const plan = await this.plan(context, open.destination, previous ? new Date(previous.snapshot.time) : undefined, tier);
			for (const warning of plan.warnings) this.options.logger.warn(`${open.name}: ${warning}`);
			const { runBackup } = await COMMANDS.backup();
			return runBackup(context, {
				repository: open.repository,
				hooks: this.hooks,
				sources: this.sourcesFor(open.set, open.name),
				// The opened repository's: read-only for a dry run.
				catalog: open.repository.options.catalog ?? this.options.catalog,
				plan,
				snapshots,
				host,
				...(previous && !options.reread ? { parent: previous } : {}),
				...(options.reread ? { reread: true } : {}),
				password: await this.options.password(),
				...(options.fileConcurrency ? { fileConcurrency: options.fileConcurrency } : {}),
			});
		});
		// A dry run's snapshot was built and never stored: there is no snapshot to name.
		if (options.dryRun) return { ...result, snapshot: undefined };
		// The groom plugin's say (`groom: { afterBackup: true }`): the set is groomed right after each successful backup.
		if (this.#groomSchedule()?.afterBackup(open.set)) result.groom = await this.groom(open.name);
		return result;
	}

	#groomSchedule(): GroomSchedule | undefined {
		const { container } = this.options.host;
		return container.isBound(TOKENS.GroomSchedule) ? container.get<GroomSchedule>(TOKENS.GroomSchedule) : undefined;
	}

	/**
	 * A backup key that can delete or bypass governance is what ransomware on this machine would
	 * use: said on every run, and refused with `strictKeys`.
	 */
	async #refuseOrWarnKey(open: OpenSet, strict: boolean): Promise<void> {
		const access = await open.destination.inspectAccess?.();
		if (!access) return;
		const powers = [...(access.canDelete ? ["delete"] : []), ...(access.canBypassGovernance ? ["bypass governance locks"] : [])];
		if (powers.length === 0) return;
		const message = `${open.name}: the key backing up to ${open.destination.description} can ${powers.join(" and ")} (${access.how}): give backups a key that cannot (destination.credentials.backup; "holdfast doctor" shows what a key may do)`;
		if (strict) throw new HoldfastError("DESTINATION_UNSAFE", `${message}; refused by --strict-keys`);
		this.options.logger.warn(message);
	}

	/**
	 * `holdfast doctor`: the destination's findings with the backup key, then the groom key's
	 * when grooming has its own, and the verdict of them all.
	 */
	async doctor(setName?: string): Promise<DoctorReport> {
		const { name, set } = this.resolveSet(setName);
		const destination = this.destinationFor(name, set);
		const request = { retentionDays: set.retention.days, mode: set.retention.mode ?? "compliance" };
		const findings = destination.doctor
			? await destination.doctor(request)
			: findingsFromPreflight(await destination.preflight({ ...request, create: false }));
		// A store that claims locks of its own and has no doctor to prove them is put to the test.
		if (!destination.doctor && destination.capabilities.enforcedByProvider && !findings.some((f) => f.status === "fail")) {
			findings.push(await proveProviderLocks(destination, this.options.clock.now()));
		}
		const groomer = this.destinationFor(name, set, "groom");
		if (groomer !== destination) {
			if (groomer.doctor) findings.push(...(await groomer.doctor({ ...request, keyOnly: true })));
			if (this.#groomSchedule()?.afterBackup(set))
				findings.push({
					check: "groom.afterBackup",
					status: "warn",
					detail:
						"each backup grooms with the groom key, so the backed-up machine holds a key that can delete: groom from another machine instead",
				});
		}
		return { set: name, destination: destination.description, findings, verdict: doctorVerdict(findings) };
	}

	/**
	 * Checks what only the destinations know: each set's retention against its destination's
	 * cap. Run before any command, so a set that can never be protected is refused up front.
	 */
	validateSets(): void {
		const container = this.options.host.container;
		const advisor = container.isBound(TOKENS.ScheduleAdvisor)
			? container.get<ScheduleAdvisor>(TOKENS.ScheduleAdvisor)
			: undefined;
		const problems = setProblems(this.options.loaded, (name, set) => this.destinationFor(name, set), advisor);
		if (problems.length > 0) throw new HoldfastError("CONFIG_INVALID", problems.join("\n"));
	}

	/** `status`: the set's hosts, their snapshots and how long what each newest one needs is locked. */
	async setProtection(setName?: string, onlyHost?: string): Promise<SetProtection> {
		return setProtection(await this.open(setName), this.hostName(), onlyHost);
	}

	async snapshots(setName?: string): Promise<SnapshotRef[]> {
		return (await this.snapshotListing(setName)).refs;
	}

	/** The readable snapshots and those no version of which verifies: for a listing that must not call unreadable absent. */
	async snapshotListing(setName?: string): Promise<SnapshotListing> {
		// Listing reads snapshot objects only: the index is needed for what grooming forgot or deleted.
		const open = await this.open(setName, { blobs: false });
		return open.repository.readSnapshots();
	}

	/**
	 * Restores a snapshot: one picked by `selector` (an ID, its prefix, `latest`), or one `list`
	 * has already picked, with the repository it opened, which is then not opened again: the
	 * index and the snapshot objects are not listed and read a second time.
	 */
	async restore(
		selector: string | PickedSnapshot,
		options: {
			setName?: string;
			target: string;
			at?: Date;
			/** `latest` and `at` pick among this host's snapshots only. */
			host?: string;
			include?: (path: string) => boolean;
			overwrite?: boolean;
			skipExisting?: boolean;
			onFile?: (path: string, bytes: number) => void;
		},
	): Promise<{ snapshot: SnapshotRef; summary: RestoreSummary }> {
		const { open, snapshot } =
			typeof selector === "string"
				? await this.list(selector, {
						...(options.setName !== undefined ? { setName: options.setName } : {}),
						...(options.at ? { at: options.at } : {}),
						...(options.host !== undefined ? { host: options.host } : {}),
					})
				: selector;
		const context = this.context("restore", open);
		const { restoreSnapshot } = await COMMANDS.restore();
		const summary = await this.run(context, () =>
			restoreSnapshot(open.repository, snapshot, {
				target: options.target,
				logger: this.options.logger,
				...(options.include ? { include: options.include } : {}),
				...(options.overwrite ? { overwrite: true } : {}),
				...(options.skipExisting ? { skipExisting: true } : {}),
				...(options.onFile ? { onFile: options.onFile } : {}),
			}),
		);
		return { snapshot, summary };
	}

	async list(
		selector: string,
		options: { setName?: string; at?: Date; host?: string } = {},
	): Promise<PickedSnapshot & ListedSnapshot> {
		const open = await this.open(options.setName);
		const snapshot = pickSnapshot(await open.repository.readSnapshots(), selector, {
			at: options.at,
			setName: open.name,
			host: options.host,
		});
		return { snapshot, open, tree: (id) => open.repository.loadTree(id) };
	}

	/** What a listed snapshot holds at and under `path`: see `snapshotEntries`. */
	entries(listed: ListedSnapshot, path = ""): Promise<SnapshotContents> {
		return snapshotEntries(listed, path);
	}

	async check(
		setName: string | undefined,
		options: { readDataPercent: number; onProgress?: (done: number, total: number) => void },
	): Promise<CheckReport> {
		const open = await this.open(setName);
		const context = this.context("check", open);
		return this.run(context, async () => {
			const listing = await open.repository.readSnapshots({ fresh: true });
			const renewedBy = await this.#renewalHorizons(open, listing.refs);
			const { checkRepository } = await COMMANDS.check();
			return checkRepository(open.repository, listing, {
				readDataPercent: options.readDataPercent,
				now: this.options.clock.now(),
				renewedBy: (ref) => renewedBy.get(ref.snapshot.set),
				...(options.onProgress ? { onProgress: options.onProgress } : {}),
			});
		});
	}

	/**
	 * For each set of the config with snapshots here, when its next run will have renewed
	 * protection: the horizon of a plan made now. A set without a schedule has none.
	 */
	async #renewalHorizons(open: OpenSet, snapshots: readonly SnapshotRef[]): Promise<Map<string, Date>> {
		const horizons = new Map<string, Date>();
		const sets = this.options.loaded.config.sets;
		for (const name of new Set(snapshots.map((r) => r.snapshot.set))) {
			const set = sets[name];
			if (!set?.schedule) continue;
			const context = { ...this.context("plan", { ...open, name, set }, true) };
			const plan = await this.plan(context, open.destination);
			horizons.set(name, plan.horizon);
		}
		return horizons;
	}

	async groom(setName?: string, options: { dryRun?: boolean } = {}): Promise<GroomResult> {
		// Without a plugin that plans a groom, the plan is empty: "forgot 0, deleted 0" would say it ran.
		// Its taps, not isUsed(): the core's own interceptor (tap attribution) counts as a use.
		if ((this.hooks.groom as unknown as { taps: readonly unknown[] }).taps.length === 0) {
			throw new HoldfastError("USAGE", "groom needs a plugin that plans grooming (@holdfast/plugin-groom) in plugins");
		}
		const open = await this.open(setName, { role: "groom", dryRun: options.dryRun ?? false });
		const context = this.context("groom", open, options.dryRun ?? false);
		return this.run(context, async () => {
			const plan = await this.hooks.groom.promise(emptyGroomPlan(), context);
			const { executeGroom } = await COMMANDS.groom();
			return executeGroom(open.repository, context, plan, this.hooks);
		});
	}

	/** `repair index`: relists packs no readable index object lists, from their headers, in a new index object. */
	async repairIndex(setName?: string, options: { dryRun?: boolean } = {}): Promise<IndexRepairResult> {
		const open = await this.open(setName, { dryRun: options.dryRun ?? false });
		const context = this.context("repair", open, options.dryRun ?? false);
		const lock = this.defaultLock(open.name, open.set, open.destination, context.startedAt);
		const { repairIndex } = await COMMANDS.repairIndex();
		return this.run(context, () => repairIndex(open.repository, lock, context));
	}

	/**
	 * Loads now the code every command loads when it first runs. A daemon runs for weeks: an
	 * upgrade of holdfast under it replaces those files, and a run that loaded them only then
	 * would find them gone.
	 */
	async loadCommands(): Promise<void> {
		await Promise.all(Object.values(COMMANDS).map((load) => load()));
	}

	async close(): Promise<void> {
		for (const destination of this.#destinations.values()) await destination.close?.();
		this.#destinations.clear();
		for (const opening of this.#repositories.values()) await (await opening.catch(() => undefined))?.close();
		this.#repositories.clear();
	}
}
