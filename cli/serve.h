/* serve.h: connection and statistics logging for `tcpkit serve`. */
#ifndef TK_CLI_SERVE_H
#define TK_CLI_SERVE_H

#include <stdbool.h>

#include "tcpkit.h"

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
