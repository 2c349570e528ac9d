/* reload.h: SIGHUP in serve, listen and relay: the certificate and the
 * access-list files read again, for new connections. */
#ifndef TK_CLI_RELOAD_H
#define TK_CLI_RELOAD_H

#include <pthread.h>

#include "aclopt.h"
#include "tcpkit.h"
#include "tlsopt.h"

/* The help's lines on SIGHUP (serve, listen and relay). */
#define RELOAD_HELP                                                             \
	"SIGHUP reloads the certificate and key (and --client-ca) when\n"       \
	"--cert was given, and the --allow-file and --deny-file files\n"        \
	"(inline rules stay), for new clients only: open connections keep\n"    \
	"what they began with, and lists apply at accept, so a client now\n"    \
	"refused is not cut.  One line says what was put in place ('reload:\n"  \
	"certificate FILE: subject S, sha256:FP, valid to T', 'reload:\n"       \
	"access list: N allow rules, M deny rules'), or why not, naming the\n"  \
	"file (unreadable, not PEM, a key that does not match, a certificate\n" \
	"out of date, a bad rule): the old one stays in use.  See\n"            \
	"docs/deploy.md.\n"

struct reload {
	const char *cmd;
	struct tk_server *server; /* NULL until made: SIGHUP does nothing */
	const struct tlsopt *tls; /* the listener's TLS options, or NULL */
	struct tk_tls_ctx **ctx;  /* the command's context: replaced */
	struct aclopt *acl;	  /* its list: replaced; or NULL */
	/*
	 * relay's tls:// targets: the options, the context the workers
	 * connect with (replaced under the lock they read it under), or NULL.
	 */
	const struct tlsopt *cli;
	struct tk_tls_ctx **cli_ctx;
	pthread_mutex_t *cli_lock;
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
