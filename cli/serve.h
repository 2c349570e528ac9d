/* serve.h: `tcpkit serve`'s options, and its connection and statistics
 * logging. */
#ifndef TK_CLI_SERVE_H
#define TK_CLI_SERVE_H

#include <stdbool.h>

#include "aclopt.h"
#include "connopt.h"
#include "metrics.h"
#include "ppopt.h"
#include "sdsock.h"
#include "tcpkit.h"
#include "tlsopt.h"
#include "unixopt.h"

#define MAX_HOSTS 16 /* -H options */

enum log_format {
	LOG_TEXT,   /* lines for people; the tutorials' wording on open */
	LOG_LOGFMT, /* key=value per line, one line per connection */
	LOG_JSON,   /* one JSON object per line */
};

struct serve_log {
	enum log_format format;
	bool quiet;	     /* no per-connection lines */
	const char *service; /* for the tutorials' wording */
};

/* serve socks5's options (serve_socks5.c). */
enum {
	SOCKS5OPT_USERS = 0x1300,
	SOCKS5OPT_ALLOW_TARGET,
	SOCKS5OPT_DENY_TARGET,
};

struct socks5opt {
	const char *users_file;
	struct tk_acl *targets; /* NULL: any target */
};

/* The command line, parsed (serve_opts.c). */
struct serve_opts {
	const char *service;
	const char *hosts[MAX_HOSTS];
	size_t nhosts;
	bool port_set;
	uint16_t port;
	int backlog;
	unsigned workers;
	bool workers_set;   /* -w given */
	uint64_t max_conns; /* 0: from the open-file limit */
	uint64_t idle_ms;
	uint64_t line_timeout_ms;
	bool line_timeout_set; /* --line-timeout given */
	uint64_t max_line;
	uint64_t max_pending;
	uint64_t drain_ms;
	uint64_t stats_ms;
	uint64_t handshake_ms;
	uint64_t slow_ms;    /* broker, chat: --slow-timeout; 0: default */
	const char *handoff; /* --handoff PATH, or NULL */
	bool allow_remote_shutdown;
	bool udp; /* -u: datagrams (echo and discard only; serve_udp.c) */
	const char *fdname; /* --fdname: the passed sockets to serve on */
	/* -H unix:PATH and unix:@NAME, taken out of hosts. */
	struct tk_addr unix_addrs[MAX_HOSTS];
	size_t nunix;
	struct unixopt unix; /* --mode, --owner, --group */
	struct serve_log log;
	struct tlsopt tls;
	struct aclopt acl;
	struct ppopt pp;
	struct keepalive keepalive;
	struct socks5opt socks;
	struct metricsopt metrics;
};

/*
 * 0 to go on, -1 after printing the help (exit 0), or an exit code after a
 * usage error.
 */
int serve_parse_args(int argc, char **argv, struct serve_opts *o);

/* `serve -u`: the UDP echo or discard service; returns the exit code. */
int serve_udp(const struct serve_opts *o);

/* --users, --allow-target, --deny-target: 0 or an exit code. */
int socks5opt_take(struct socks5opt *o, int ch, const char *arg);
/* The options against the service and the addresses: 0 or usage (64). */
int socks5opt_check(const struct serve_opts *o);
/* The service's options (the users file read): 0 or an exit code. */
int socks5opt_setup(const struct serve_opts *o, struct tk_socks5_opts *so);
void socks5opt_free(struct socks5opt *o, struct tk_socks5_opts *so);

/* Parse "text", "logfmt" or "json"; -1 if none of them. */
int serve_log_parse_format(const char *text);
/*
 * Log a server event.  Called on worker threads: each record is written
 * with one stdio call, so lines never interleave.
 */
void serve_log_event(const struct serve_log *log, enum tk_server_event ev,
		     struct tk_conn *c, const struct tk_addr *peer, int err);
/* Log the totals; what is "interval", "exit" or "drain". */
void serve_log_stats(const struct serve_log *log, const char *what,
		     const struct tk_server_stats *st);

#endif /* TK_CLI_SERVE_H */
