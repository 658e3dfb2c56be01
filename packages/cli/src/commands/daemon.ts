import type { Argv } from "yargs";
import type { GlobalOptions } from "../session.js";
import { type Args, withSession } from "./run-session.js";

/** `holdfast daemon`: every set on its schedule until stopped. */
export function registerDaemonCommand(cli: Argv<GlobalOptions>, _setExit: (code: number) => void): void {
	cli.command(
		"daemon",
		"run every set on its schedule until stopped (SIGTERM finishes or abandons the current run safely)",
		(y) =>
			y
				.option("strict-keys", { type: "boolean", describe: "refuse each run whose key can delete or bypass governance" })
				.example("$0 daemon --config /etc/holdfast.yaml", "as a systemd service"),
		(args) =>
			withSession(
				args as Args,
				async (session) => {
					const { runDaemon } = await import("../daemon.js");
					return runDaemon(session, args as Args);
				},
				{ runningClock: true },
			),
	);
}
