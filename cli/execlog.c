/* execlog.c: the PATH check and the child's exit line, for every command
 * that runs a program per connection (listen --exec, relay exec:/sh:). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "execlog.h"

bool
execlog_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	if (path == NULL)
		path = "/usr/bin:/bin";
	while (*path != '\0') {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, prog);
		if (len != 0 && access(buf, X_OK) == 0)
			return true;
		path += len;
		if (*path == ':')
			path++;
	}
	return false;
}

void
execlog_exit(const char *cmd, const char *prog, const struct tk_exec_exit *e)
{
	char who[TK_ADDRSTRLEN], dur[32], how[64];

	tk_addr_format(&e->peer, who, sizeof(who));
	if (e->pid == 0) {
		cli_error(cmd, prog, "cannot run for %s: %s", who,
			  tk_strerror(e->spawn_err));
		return;
	}
	if (e->status == TK_EXEC_STATUS_UNKNOWN)
		snprintf(how, sizeof(how), "ended, status unknown");
	else if (WIFEXITED(e->status))
		snprintf(how, sizeof(how), "exit %d", WEXITSTATUS(e->status));
	else if (WIFSIGNALED(e->status))
		snprintf(how, sizeof(how), "killed by signal %d (%s)",
			 WTERMSIG(e->status), strsignal(WTERMSIG(e->status)));
	else
		snprintf(how, sizeof(how), "status %d", e->status);
	cli_log("exit", "peer", who, "%s: pid %d %s after %s", who, (int)e->pid,
		how, cli_format_duration(e->duration_ms, dur, sizeof(dur)));
}
