/* reload.h: SIGHUP in serve, listen and relay: the certificate and the
 * access-list files read again, for new connections. */
#ifndef TK_CLI_RELOAD_H
#define TK_CLI_RELOAD_H

#include "aclopt.h"
#include "tcpkit.h"
#include "tlsopt.h"

struct reload {
	const char *cmd;
	struct tk_server *server; /* NULL until made: a SIGHUP then waits */
	const struct tlsopt *tls; /* the listener's TLS options, or NULL */
	struct tk_tls_ctx **ctx;  /* the command's context: replaced */
	struct aclopt *acl;	  /* its list: replaced; or NULL */
};

/*
 * Take SIGHUP on the owner's loop (before any worker thread starts, as
 * tk_loop_signal() wants): each one reloads, on that loop, never in a
 * signal handler.  0, or an exit code after printing the error.
 */
int reload_watch(struct tk_loop *loop, struct reload *r);

/*
 * Reload now.  The certificate and key (and --client-ca) are read when
 * --cert was given, the lists when a file was; the inline --allow and
 * --deny stay as they are.  Each part logs one line: what was put in
 * place, or why not, naming the file (the old one stays in use then).
 */
void reload_now(struct reload *r);

#endif /* TK_CLI_RELOAD_H */
