import type { Argv } from "yargs";
import { registerBackupCommand } from "./commands/backup.js";
import { registerCheckCommand } from "./commands/check.js";
import { registerConfigCommand } from "./commands/config.js";
import { registerDaemonCommand } from "./commands/daemon.js";
import { registerDoctorCommand } from "./commands/doctor.js";
import { registerGroomCommand } from "./commands/groom.js";
import { registerInitCommand } from "./commands/init.js";
import { registerLsCommand } from "./commands/ls.js";
import { registerPlanCommand } from "./commands/plan.js";
import { registerPluginsCommand } from "./commands/plugins.js";
import { registerRepairCommands } from "./commands/repair.js";
import { registerRestoreCommand } from "./commands/restore.js";
import { withSession } from "./commands/run-session.js";
import { registerSnapshotsCommand } from "./commands/snapshots.js";
import { registerStatusCommand } from "./commands/status.js";
import type { GlobalOptions } from "./session.js";

/** Every command, each a module of its own under commands/, in the order `--help` lists them. */
export function registerCommands(cli: Argv<GlobalOptions>, setExit: (code: number) => void): void {
	registerInitCommand(cli, setExit);
	registerBackupCommand(cli, setExit);
	registerSnapshotsCommand(cli, setExit);
	registerLsCommand(cli, setExit);
	registerRestoreCommand(cli, setExit);
	registerPlanCommand(cli, setExit);
	registerGroomCommand(cli, setExit);
	registerCheckCommand(cli, setExit);
	registerRepairCommands(cli, { withSession, setExit });
	registerDoctorCommand(cli, { withSession, setExit });
	registerStatusCommand(cli, setExit);
	registerDaemonCommand(cli, setExit);
	registerPluginsCommand(cli, setExit);
	registerConfigCommand(cli, setExit);
}
