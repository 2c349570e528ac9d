/* handoff.h: --handoff PATH, a restart without dropping connections: the
 * listening sockets pass from the running process to its successor. */
#ifndef TK_CLI_HANDOFF_H
#define TK_CLI_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpkit.h"

#define HANDOFF_OPT 0x14d0
#define HANDOFF_LONGOPT                                                        \
	{                                                                      \
		"handoff", required_argument, NULL, HANDOFF_OPT                \
	}
#define HANDOFF_HELP                                                           \
	"      --handoff PATH\n"                                               \
	"                      restart without dropping a connection: if a\n"  \
	"                      tcpkit of this user answers at the UNIX\n"      \
	"                      socket PATH, take its listening sockets (the\n" \
	"                      same addresses) and tell it to drain; then\n"   \
	"                      answer at PATH (mode 0600) for the next one.\n" \
	"                      Exit 64 when the addresses differ (the\n"       \
	"                      running one goes on), 73 when PATH is no\n"     \
	"                      socket (left alone), 77 another user's process\n"

/* What the command line listens on, compared with what is handed over. */
struct handoff_want {
	const char *const *hosts; /* none: loopback (127.0.0.1, ::1) */
	size_t nhosts;
	bool any_of;   /* one of hosts is enough (a wildcard's fallback) */
	uint16_t port; /* 0: whichever port is handed over */
};

struct handoff;

/* --handoff's PATH checked when parsed: 0 or CLI_EXIT_USAGE. */
int handoff_check_path(const char *cmd, const char *path);
/*
 * Before listening: ask whoever answers at path for its listening
 * sockets.  0 with *out set (handoff_count() says how many came; none
 * when nobody answered: listen as usual), or an exit code after printing
 * why.
 */
int handoff_open(const char *cmd, const char *path, struct handoff **out);
size_t handoff_count(const struct handoff *h);
/*
 * Serve on the sockets received if they are what w asks for; a mismatch
 * is printed and its exit code returned, and the running process was not
 * told anything: it goes on serving.
 */
int handoff_adopt(struct handoff *h, struct tk_server *srv,
		  const struct handoff_want *w);
/*
 * Once serving: tell the predecessor to go, then answer at PATH on loop
 * (srv's sockets for the next successor); on_go runs on loop when one has
 * taken them over (drain then, as on SIGTERM).  0 or an exit code.
 */
int handoff_start(struct handoff *h, struct tk_loop *loop,
		  struct tk_server *srv, void (*on_go)(void *arg), void *arg);
/*
 * The --metrics sockets the predecessor handed over, fds[0..*n): whoever
 * serves on one sets it to -1; handoff_free() closes the rest.
 */
int *handoff_metrics_fds(struct handoff *h, size_t *n);
/*
 * Hand metrics's listening sockets (--metrics) over too, labelled apart,
 * and pause it at "go".  Before handoff_start(); h NULL is fine.
 */
void handoff_also(struct handoff *h, struct tk_server *metrics);
/* Stop answering (at a drain); PATH is removed if still ours. */
void handoff_stop(struct handoff *h);
void handoff_free(struct handoff *h);

#endif /* TK_CLI_HANDOFF_H */
