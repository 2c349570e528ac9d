/* sdsock.c: serve, listen and relay under systemd: adopting the sockets it
 * passes, and telling it when we are ready, alive, busy and stopping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "sdsock.h"

#define SDSOCK_MAX	16   /* a server's listeners, at most */
#define STATUS_EVERY_MS 1000 /* STATUS= is checked this often */
#define ENV_SHOWN	64   /* bytes of a variable quoted in an error */

/* A copy of a variable, for the error after the library unset it. */
static void
keep_env(const char *name, char *buf, size_t len)
{
	const char *v = getenv(name);

	snprintf(buf, len, "%s=%s", name, v != NULL ? v : "");
}

int
sdsock_adopt(const char *cmd, struct tk_server *srv, const char *fdname,
	     bool one, bool *adopted)
{
	struct tk_sd_socket socks[SDSOCK_MAX];
	char pid[ENV_SHOWN], fds[ENV_SHOWN], names[ENV_SHOWN];
	size_t taken = 0;
	int n, err = 0;

	*adopted = false;
	keep_env("LISTEN_PID", pid, sizeof(pid));
	keep_env("LISTEN_FDS", fds, sizeof(fds));
	keep_env("LISTEN_FDNAMES", names, sizeof(names));
	n = tk_sd_listen_fds(socks, SDSOCK_MAX);
	switch (n) {
	case TK_ELISTENFDS:
		cli_error("socket activation", fds, "%s (%s)", tk_strerror(n),
			  pid);
		return CLI_EXIT_USAGE;
	case TK_ETOOBIG:
		cli_error("socket activation", fds,
			  "more sockets than %s takes (%d)", cmd, SDSOCK_MAX);
		return CLI_EXIT_USAGE;
	case TK_EFDNAMES:
		cli_error("socket activation", names, "%s (%s)", tk_strerror(n),
			  fds);
		return CLI_EXIT_USAGE;
	default:
		if (n < 0) {
			cli_error("socket activation", fds,
				  "a descriptor passed: %s", tk_strerror(n));
			return CLI_EXIT_USAGE;
		}
	}
	for (int i = 0; i < n; i++) {
		char where[TK_SD_NAME_MAX + 32];

		if ((fdname != NULL && strcmp(socks[i].name, fdname) != 0) ||
		    (one && taken == 1) || err != 0) {
			close(socks[i].fd); /* not ours to serve on */
			continue;
		}
		snprintf(where, sizeof(where), "fd %d (%s)", socks[i].fd,
			 socks[i].name);
		err = tk_server_listen_fd(srv, socks[i].fd);
		if (err == -EINVAL || err == -ENOTSOCK) {
			cli_error("socket activation", where,
				  "not a listening stream socket (%s only "
				  "takes TCP or UNIX stream sockets)",
				  cmd);
			err = CLI_EXIT_USAGE;
		} else if (err < 0) {
			err = cli_fail("socket activation", where, err);
		} else {
			taken++;
			continue;
		}
		close(socks[i].fd);
	}
	if (err != 0)
		return err;
	if (n > 0 && taken == 0) {
		cli_error("socket activation", fdname,
			  "no socket of this name among the %d passed (%s)", n,
			  names);
		return CLI_EXIT_USAGE;
	}
	if (taken > 0)
		cli_log("activation", NULL, NULL,
			"socket activation: %zu socket%s from the service "
			"manager; the addresses asked for are not bound",
			taken, CLI_PLURAL(taken));
	*adopted = taken > 0;
	return 0;
}

/* Send, and say once if the manager cannot be told. */
static void
notify(struct sdsock *sd, const char *state)
{
	int err = tk_sd_notify(state);

	if (err < 0 && !sd->warned) {
		sd->warned = true;
		cli_error("warning", getenv("NOTIFY_SOCKET"),
			  "cannot notify the service manager: %s",
			  tk_strerror(err));
	}
}

static void
on_watchdog(struct tk_timer *t, void *arg)
{
	(void)t;
	notify(arg, "WATCHDOG=1");
}

static void
send_status(struct sdsock *sd)
{
	struct tk_server_stats st;
	char status[sizeof(sd->last_status)];

	tk_server_get_stats(sd->srv, &st);
	snprintf(status, sizeof(status), "STATUS=%llu open, %llu accepted",
		 (unsigned long long)st.active,
		 (unsigned long long)st.accepted);
	if (strcmp(status, sd->last_status) == 0)
		return;
	strcpy(sd->last_status, status);
	notify(sd, status);
}

static void
on_status(struct tk_timer *t, void *arg)
{
	(void)t;
	send_status(arg);
}

void
sdsock_ready(struct sdsock *sd, struct tk_loop *loop, struct tk_server *srv)
{
	const char *env = getenv("NOTIFY_SOCKET");
	uint64_t usec;
	int err;

	if (env == NULL || *env == '\0')
		return;
	sd->srv = srv;
	notify(sd, "READY=1");
	send_status(sd);
	err = tk_sd_watchdog(&usec);
	if (err < 0)
		cli_error("warning", "WATCHDOG_USEC",
			  "not a number of microseconds; no watchdog pings");
	/* Half the interval, as sd_watchdog_enabled(3) advises. */
	if (err > 0 &&
	    (tk_timer_new(loop, on_watchdog, sd, &sd->watchdog) < 0 ||
	     tk_timer_start(sd->watchdog, usec / 2000 > 0 ? usec / 2000 : 1,
			    usec / 2000 > 0 ? usec / 2000 : 1) < 0))
		cli_error("warning", "", "no watchdog pings (out of memory)");
	if (tk_timer_new(loop, on_status, sd, &sd->status) < 0 ||
	    tk_timer_start(sd->status, STATUS_EVERY_MS, STATUS_EVERY_MS) < 0)
		cli_error("warning", "", "no STATUS updates (out of memory)");
}

void
sdsock_stopping(struct sdsock *sd)
{
	if (sd->srv == NULL)
		return; /* not notifying */
	notify(sd, "STOPPING=1");
	/* The watchdog goes on: a drain that hangs is worth a kill. */
}

void
sdsock_free(struct sdsock *sd)
{
	tk_timer_free(sd->watchdog);
	tk_timer_free(sd->status);
	sd->watchdog = sd->status = NULL;
}
