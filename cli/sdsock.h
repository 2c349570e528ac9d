/* sdsock.h: serve, listen and relay under systemd: the sockets it passes
 * (socket activation), and readiness, stopping, watchdog and status
 * notifications (sdsock.c). */
#ifndef TK_CLI_SDSOCK_H
#define TK_CLI_SDSOCK_H

#include <stdbool.h>

#include "tcpkit.h"

/* getopt value of --fdname, clear of the other shared option sets. */
#define SDSOCK_FDNAME 0x1e00
#define SDSOCK_LONGOPTS                                                        \
	{                                                                      \
		"fdname", required_argument, NULL, SDSOCK_FDNAME               \
	}

/* The notifications' state; zeroed before use (sdsock_free() is safe). */
struct sdsock {
	struct tk_server *srv;
	struct tk_timer *watchdog; /* WATCHDOG=1 at half of WATCHDOG_USEC */
	struct tk_timer *status;   /* STATUS= with the counts, when changed */
	char last_status[96];
	bool warned; /* a notification was refused: said once */
};

/*
 * Take the sockets the service manager passed to this process
 * (LISTEN_FDS): those named fdname (FileDescriptorName=) or all; only the
 * first when one is set (listen, relay).  *adopted is false when none
 * were passed: the caller binds as usual.  Returns 0, or an exit code
 * after the error (a malformed LISTEN_FDS, a name matching nothing...).
 * Call it before any thread or child starts (it unsets the variables).
 */
int sdsock_adopt(const char *cmd, struct tk_server *srv, const char *fdname,
		 bool one, bool *adopted);

/*
 * Listening and started: READY=1, then the watchdog and status timers on
 * loop, the owner's (a loop that stops turning stops the pings).  Without
 * NOTIFY_SOCKET, nothing.
 */
void sdsock_ready(struct sdsock *sd, struct tk_loop *loop,
		  struct tk_server *srv);

/* A drain begins: STOPPING=1. */
void sdsock_stopping(struct sdsock *sd);

void sdsock_free(struct sdsock *sd);

#endif /* TK_CLI_SDSOCK_H */
