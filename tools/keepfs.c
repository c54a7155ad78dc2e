/*
 * keepfs.c - the keepfs command: dispatch to a subcommand.
 *
 * One binary with git-style subcommands, each in tools/cmd_<name>.c and
 * listed once in commands[].  run_command() does what every command needs:
 * answers --help from the table, runs the command, and makes sure what it
 * printed really reached stdout.  Invoked as "mount.keepfs" (a symlink in
 * sbindir) the binary follows mount(8)'s helper convention instead, and
 * so it does when mount.fuse3 runs it for type fuse.keepfs ("keepfs STORE
 * MOUNTPOINT -o OPTS").
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "keep.h"
#include "kfs.h"
#include "util_i.h"

#define CMD(n, f, fl, sum, use) \
	{.name = n, .fn = f, .flags = fl, .summary = sum, .usage = use}

static const struct command commands[] = {
	CMD("init", cmd_init, 0, "create a new store", usage_init),
	CMD("mount", cmd_mount, 0, "mount a store on a directory", usage_mount),
	CMD("umount", cmd_umount, 0, "unmount and wait for the final commit",
	    usage_umount),
	{.name = "snapshot",
	 .fn = cmd_snapshot,
	 .flags = CMD_VIA_DAEMON,
	 .summary = "commit and keep the tree as a named snapshot",
	 .usage = usage_snapshot,
	 .ctl_fn = ctl_snapshot},
	CMD("delete", cmd_delete, 0, "delete snapshots", usage_delete),
	{.name = "restore",
	 .fn = cmd_restore,
	 .flags = CMD_VIA_DAEMON,
	 .summary = "make the tree or paths what they were in a snapshot",
	 .usage = usage_restore,
	 .ctl_fn = ctl_restore},
	CMD("rename", cmd_rename, 0, "rename a snapshot", usage_rename),
	CMD("list", cmd_list, 0, "list the snapshots (or commits) of a store",
	    usage_list),
	CMD("cat", cmd_cat, 0, "write one version of a file to stdout",
	    usage_cat),
	CMD("diff", cmd_diff, 0, "show what changed between two versions",
	    usage_diff),
	CMD("log", cmd_log, 0, "show every version of one path",
	    usage_log),
	{.name = "config",
	 .fn = cmd_config,
	 .flags = CMD_VIA_DAEMON,
	 .summary = "show or change the retention settings of a store",
	 .usage = usage_config,
	 .ctl_fn = ctl_config},
	{.name = "gc",
	 .fn = cmd_gc,
	 .flags = CMD_VIA_DAEMON,
	 .summary = "drop what is no longer kept and give the space back",
	 .usage = usage_gc,
	 .ctl_fn = ctl_gc},
	CMD("key", cmd_key, 0, "make a key file, or change a store's key",
	    usage_key),
	{.name = "key-change",
	 .fn = cmd_key,
	 .flags = CMD_HIDDEN | CMD_VIA_DAEMON,
	 .summary = "the daemon's side of 'keepfs key change'",
	 .usage = usage_key,
	 .ctl_fn = ctl_key_change},
	CMD("send", cmd_send, 0, "write a snapshot as a stream for receive",
	    usage_send),
	CMD("receive", cmd_receive, 0,
	    "apply a stream to a replica (made if missing)", usage_receive),
	CMD("promote", cmd_promote, 0, "make a replica an ordinary store",
	    usage_promote),
	CMD("sync", cmd_sync, 0, "bring a replica, here or over ssh, up to date",
	    usage_sync),
	CMD("sync-state", cmd_sync_state, CMD_HIDDEN,
	    "what sync needs to know of a destination", usage_sync_state),
	CMD("stats", cmd_stats, 0, "show what a store holds", usage_stats),
	CMD("fsck", cmd_fsck, 0, "check a store's consistency", usage_fsck),
	{.name = "retain-now",
	 .fn = cmd_retain_now,
	 .flags = CMD_HIDDEN | CMD_VIA_DAEMON,
	 .summary = "run a mounted store's retention now (for tests)",
	 .usage = usage_retain_now,
	 .ctl_fn = ctl_retain_now},
	{.name = "ctl-ping",
	 .fn = cmd_ctl_ping,
	 .flags = CMD_HIDDEN | CMD_VIA_DAEMON,
	 .summary = "ask a mount's daemon to answer",
	 .usage = usage_ctl_ping,
	 .ctl_fn = ctl_ping},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char main_usage[] =
	"usage: keepfs [--version] [--help] COMMAND [ARGS]\n";

static void list_commands(FILE *f)
{
	fputs(main_usage, f);
	fputs("\ncommands:\n", f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!(commands[i].flags & CMD_HIDDEN))
			fprintf(f, "   %-9s %s\n", commands[i].name,
				commands[i].summary);
	fputs("\nTARGET is a store path or the mount point of a store.\n"
	      "'keepfs COMMAND --help' describes a command; "
	      "see also keepfs(1).\n",
	      f);
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Returns the exit status; stdout flushed and checked. */
static int finish_stdout(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* a closed pipe is the reader's choice, not our failure */
		if (errno == EPIPE)
			return status;
		fprintf(stderr, "keepfs: write error on standard output: %s\n",
			strerror(errno));
		return EXIT_FAILED;
	}
	return status;
}

/* Does argv ask for help?  Only options before "--" count. */
static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

int daemon_ctl(struct kfs_ctl *c, int argc, char **argv)
{
	const struct command *cmd = argc > 0 ? find_command(argv[0]) : NULL;

	if (!cmd || !(cmd->flags & CMD_VIA_DAEMON) || !cmd->ctl_fn) {
		ctl_error(c, "the daemon does not run '%s'; use the keepfs "
			  "that mounted the store",
			  argc > 0 ? argv[0] : "");
		return EXIT_USAGE;
	}
	/* requests run one at a time: getopt's state is ours */
	optind = 0;
	opterr = 0;
	tool_streams(kfs_ctl_out(c), kfs_ctl_err(c));
	int status = cmd->ctl_fn(c, argc, argv);
	tool_streams(NULL, NULL);
	return status;
}

static int run_command(const struct command *cmd, int argc, char **argv)
{
	int status;

	if (wants_help(argc, argv)) {
		fputs(cmd->usage, stdout);
		return finish_stdout(EXIT_OK);
	}
	/* core's messages go to stderr; chatter below warnings is not for
	 * a command line tool unless asked for (mount -d raises it) */
	keep_log_set_level(LOG_WARNING);
	status = cmd->fn(argc, argv);
	return finish_stdout(status);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Make sure fds 0-2 are open, so that no file or pipe we open later gets
 * one of them and is clobbered when the daemon redirects its stdio. */
static void sanitize_stdfds(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	while (fd >= 0 && fd <= STDERR_FILENO) {
		fcntl(fd, F_SETFD, 0); /* it is our stdio now */
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	}
	if (fd > STDERR_FILENO)
		close(fd);
}

int main(int argc, char **argv)
{
	const struct command *cmd;

	sanitize_stdfds();

	if (argc > 0 && strcmp(base_name(argv[0]), "mount.keepfs") == 0) {
		static const struct command helper = CMD(
			"mount.keepfs", cmd_mount_helper, 0, "",
			usage_mount_helper);

		return run_command(&helper, argc, argv);
	}

	if (argc < 2) {
		fputs(main_usage, stderr);
		fputs("see 'keepfs --help'\n", stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("keepfs %s\n", KEEP_VERSION_STRING);
		return finish_stdout(EXIT_OK);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		list_commands(stdout);
		return finish_stdout(EXIT_OK);
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc == 2) {
			list_commands(stdout);
			return finish_stdout(EXIT_OK);
		}
		cmd = find_command(argv[2]);
		if (!cmd) {
			fprintf(stderr,
				"keepfs: '%s' is not a keepfs command; "
				"see 'keepfs --help'\n",
				argv[2]);
			return EXIT_USAGE;
		}
		fputs(cmd->usage, stdout);
		return finish_stdout(EXIT_OK);
	}
	if (argv[1][0] == '-') {
		fprintf(stderr, "keepfs: unknown option '%s'\n", argv[1]);
		fputs(main_usage, stderr);
		return EXIT_USAGE;
	}

	cmd = find_command(argv[1]);
	if (!cmd && argc >= 3 && strchr(argv[1], '/') &&
	    (argc == 3 || !strcmp(argv[3], "-o"))) {
		/* mount.fuse3 runs "keepfs STORE MOUNTPOINT -o OPTS" for a
		 * file system of type fuse.keepfs: the helper's convention */
		static const struct command helper = CMD(
			"mount.keepfs", cmd_mount_helper, 0, "",
			usage_mount_helper);

		return run_command(&helper, argc, argv);
	}
	if (!cmd) {
		fprintf(stderr,
			"keepfs: '%s' is not a keepfs command; "
			"see 'keepfs --help'\n",
			argv[1]);
		return EXIT_USAGE;
	}
	return run_command(cmd, argc - 1, argv + 1);
}
