/* ppopt.h: --proxy-protocol and --proxy-protocol-from (serve, listen,
 * relay), and --send-proxy (relay, connect). */
#ifndef TK_CLI_PPOPT_H
#define TK_CLI_PPOPT_H

#include <stdbool.h>

#include "tcpkit.h"

/* getopt values, clear of the other shared sets (0x1000 to 0x1400). */
enum {
	PPOPT_ON = 0x1900,
	PPOPT_FROM,
	PPOPT_SEND,
};

#define PPOPT_LONGOPTS                                                         \
	{ "proxy-protocol", no_argument, NULL, PPOPT_ON },                     \
	{                                                                      \
		"proxy-protocol-from", required_argument, NULL, PPOPT_FROM     \
	}
#define PPOPT_SEND_LONGOPT                                                     \
	{                                                                      \
		"send-proxy", required_argument, NULL, PPOPT_SEND              \
	}

/* The options' lines of a command's help (for `tcpkit help CMD`). */
#define PPOPT_HELP                                                                \
	"Behind a load balancer (the PROXY protocol, v1 or v2; see\n"             \
	"docs/deploy.md):\n"                                                      \
	"      --proxy-protocol\n"                                                \
	"                      every client must be a balancer that sends a\n"    \
	"                      PROXY header first (within the handshake\n"        \
	"                      timeout); the client it names is the one\n"        \
	"                      logged, matched by --allow/--deny and given to\n"  \
	"                      programs; no header in time, a bad one or an\n"    \
	"                      untrusted sender: closed, logged 'refused ADDR'\n" \
	"      --proxy-protocol-from CIDR\n"                                      \
	"                      the balancers whose headers are believed\n"        \
	"                      (several: commas, or repeat it); required with\n"  \
	"                      --proxy-protocol, which it implies\n"
struct ppopt {
	bool on;
	struct tk_acl *from; /* NULL until --proxy-protocol-from */
	int send;	     /* --send-proxy: 1 or 2; 0: none */
};

/*
 * Take one of the options (ch one of PPOPT_*): 0, or an exit code after
 * printing the error (usage, 64, for a bad CIDR or version).
 */
int ppopt_take(const char *cmd, struct ppopt *o, int ch, const char *arg);
/*
 * After the options: --proxy-protocol without --proxy-protocol-from is a
 * usage error (trust is said, never assumed).  0 or 64.
 */
int ppopt_check(const char *cmd, const struct ppopt *o);
/* Set a server's options from o. */
void ppopt_apply(const struct ppopt *o, struct tk_server_opts *so);
void ppopt_free(struct ppopt *o);
/* A server's REJECT for the PROXY protocol (not max_conns, not --deny)? */
bool ppopt_is_refusal(int err);
/* Why, in words, for the log: "no PROXY protocol header in time"... */
const char *ppopt_why(int err);
/*
 * Write the --send-proxy header of a connection from src to dst on c,
 * before anything else: 0 or the error.
 */
int ppopt_send(int version, struct tk_conn *c, const struct tk_addr *src,
	       const struct tk_addr *dst);

#endif /* TK_CLI_PPOPT_H */
