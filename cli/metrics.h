/* metrics.h: --metrics HOST:PORT, the Prometheus endpoint and status page
 * of serve, listen and relay (metrics.c, metrics_page.c). */
#ifndef TK_CLI_METRICS_H
#define TK_CLI_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tcpkit.h"

/* getopt value, clear of the other shared option sets. */
enum {
	METRICSOPT_METRICS = 0x1a00,
};

#define METRICSOPT_LONGOPT                                                     \
	{                                                                      \
		"metrics", required_argument, NULL, METRICSOPT_METRICS         \
	}

/* The option's lines of a command's help (for `tcpkit help CMD`). */
#define METRICSOPT_HELP                                                        \
	"      --metrics ADDR  serve Prometheus metrics at /metrics and a\n"   \
	"                      status page at / over HTTP, on a socket of\n"   \
	"                      their own; ADDR is [HOST:]PORT (a bare PORT:\n" \
	"                      loopback; :PORT every address; 0: any free\n"   \
	"                      port, told in 'metrics on ADDR:PORT')\n"

struct metricsopt {
	bool set;
	const char *text;
	struct tk_endpoint ep;
	uint16_t port;
};

/* Take --metrics's value: 0, or usage (64) after printing the error. */
int metricsopt_take(const char *cmd, struct metricsopt *o, const char *arg);

struct metrics;

/*
 * Listen (on data's owner loop, never a worker's) and serve the numbers of
 * data, a server running service; "metrics on ADDR" is logged for each
 * address.  fds[0..nfds): sockets a predecessor handed over (--handoff),
 * served instead of binding when on o's port (those taken set to -1).
 * 0 with *out set (NULL when the option was not given), or an exit code
 * after printing the error.
 */
int metrics_start(const char *cmd, const struct metricsopt *o,
		  struct tk_server *data, const char *service, int *fds,
		  size_t nfds, struct metrics **out);
/* The endpoint's own server (to hand its sockets over), or NULL. */
struct tk_server *metrics_server(const struct metrics *m);
/* Close the endpoint; before data is freed.  NULL is fine. */
void metrics_free(struct metrics *m);

/* The status page (metrics_page.c): a self-contained HTML document. */
void metrics_page(FILE *f, const char *title);

#endif /* TK_CLI_METRICS_H */
