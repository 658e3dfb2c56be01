/**
 * Service identifiers of the container, in one place. `Symbol.for` keeps them equal across
 * copies of this module (a plugin bundled with its own copy still finds the host's services).
 */
export const TOKENS = Object.freeze({
	Clock: Symbol.for("holdfast.Clock"),
	Logger: Symbol.for("holdfast.Logger"),
	Hooks: Symbol.for("holdfast.Hooks"),
	Catalog: Symbol.for("holdfast.Catalog"),
	Config: Symbol.for("holdfast.Config"),
	/** Multi-injected: every source type a plugin contributes. */
	SourceType: Symbol.for("holdfast.SourceType"),
	/** Multi-injected: every destination type a plugin contributes. */
	DestinationType: Symbol.for("holdfast.DestinationType"),
	/** The cost forecast, provided by the retention planner plugin. */
	Forecaster: Symbol.for("holdfast.Forecaster"),
	/** What a set's schedule cannot promise (`config check`), provided by the retention planner plugin. */
	ScheduleAdvisor: Symbol.for("holdfast.ScheduleAdvisor"),
	/** Which sets are groomed after each backup, provided by the groom plugin. */
	GroomSchedule: Symbol.for("holdfast.GroomSchedule"),
});
