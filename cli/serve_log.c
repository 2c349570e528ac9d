/* serve_log.c: one log record per connection and periodic totals, as text,
 * logfmt or JSON. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "serve.h"

int
serve_log_parse_format(const char *text)
{
	if (strcmp(text, "text") == 0)
		return LOG_TEXT;
	if (strcmp(text, "logfmt") == 0)
		return LOG_LOGFMT;
	if (strcmp(text, "json") == 0)
		return LOG_JSON;
	return -1;
}

/* Why a connection ended, in words: "done" for an orderly end. */
static const char *
reason(int err)
{
	/* A write over the client's output limit: it does not read. */
	if (err == -ENOBUFS)
		return "slow reader: output over its limit";
	return err == 0 ? "done" : tk_strerror(err);
}

static void
log_text(const struct serve_log *log, enum tk_server_event ev,
	 struct tk_conn *c, const struct tk_addr *where, int err)
{
	char peer[TK_ADDRSTRLEN], ts[48], dur[32];

	cli_timestamp(ts, sizeof(ts));
	if (ev == TK_SERVER_ERROR) {
		cli_error("accept", "", "%s", tk_strerror(err));
		return;
	}
	if (ev == TK_SERVER_REJECT && err == TK_EDENIED) {
		tk_addr_format(where, peer, sizeof(peer));
		cli_log("deny", NULL, NULL, "denied %s at [%s]: %s", peer, ts,
			tk_strerror(err));
		return;
	}
	if (ev == TK_SERVER_REJECT && ppopt_is_refusal(err)) {
		tk_addr_format(where, peer, sizeof(peer));
		cli_log("pp_refuse", NULL, NULL, "refused %s at [%s]: %s", peer,
			ts, ppopt_why(err));
		return;
	}
	if (ev == TK_SERVER_REJECT) {
		tk_addr_format(where, peer, sizeof(peer));
		cli_log("reject", NULL, NULL,
			"rejected %s at [%s]: too many connections", peer, ts);
		return;
	}
	tk_addr_format(tk_conn_peer(c), peer, sizeof(peer));
	if (ev == TK_SERVER_OPEN) {
		/* The tutorials' own wording for their services. */
		if (strcmp(log->service, "basic") == 0)
			fprintf(stderr, "Got a connection from [%s] at [%s]\n",
				peer, ts);
		else if (strcmp(log->service, "welcome") == 0)
			fprintf(stderr, "Connected with %s at [%s]\n", peer,
				ts);
		else
			fprintf(stderr, "connection from %s at [%s]\n", peer,
				ts);
		return;
	}
	fprintf(stderr,
		"closed %s at [%s] after %s: %llu bytes in, %llu bytes out "
		"(%s)\n",
		peer, ts,
		cli_format_duration(tk_conn_age_ms(c), dur, sizeof(dur)),
		(unsigned long long)tk_conn_bytes_in(c),
		(unsigned long long)tk_conn_bytes_out(c), reason(err));
}

static void
log_machine(const struct serve_log *log, enum tk_server_event ev,
	    struct tk_conn *c, const struct tk_addr *where, int err)
{
	char peer[TK_ADDRSTRLEN], ts[40], line[512];
	bool denied = ev == TK_SERVER_REJECT && err == TK_EDENIED;
	bool pp = ev == TK_SERVER_REJECT && !denied && ppopt_is_refusal(err);
	const char *event = ev == TK_SERVER_CLOSE    ? "close"
			    : denied		     ? "deny"
			    : pp		     ? "pp_refuse"
			    : ev == TK_SERVER_REJECT ? "reject"
						     : "accept_error";
	bool json = log->format == LOG_JSON;

	cli_iso_time(ts, sizeof(ts));
	if (ev != TK_SERVER_CLOSE) {
		const char *why = pp ? ppopt_why(err)
				  : ev == TK_SERVER_REJECT && !denied
					  ? "too many connections"
					  : tk_strerror(err);

		if (where != NULL)
			tk_addr_format(where, peer, sizeof(peer));
		snprintf(line, sizeof(line),
			 json ? "{\"ts\":\"%s\",\"event\":\"%s\","
				"%s%s%s\"reason\":\"%s\"}\n"
			      : "ts=%s event=%s %s%s%sreason=\"%s\"\n",
			 ts, event,
			 where == NULL ? ""
			 : json	       ? "\"peer\":\""
				       : "peer=",
			 where == NULL ? "" : peer,
			 where == NULL ? ""
			 : json	       ? "\","
				       : " ",
			 why);
		fputs(line, stderr);
		return;
	}
	tk_addr_format(tk_conn_peer(c), peer, sizeof(peer));
	/* Error texts are fixed ASCII words: no escaping needed. */
	snprintf(line, sizeof(line),
		 json ? "{\"ts\":\"%s\",\"event\":\"close\",\"peer\":\"%s\","
			"\"worker\":%u,\"duration_ms\":%llu,\"bytes_in\":%llu,"
			"\"bytes_out\":%llu,\"reason\":\"%s\"}\n"
		      : "ts=%s event=close peer=%s worker=%u duration_ms=%llu "
			"bytes_in=%llu bytes_out=%llu reason=\"%s\"\n",
		 ts, peer, tk_conn_worker(c),
		 (unsigned long long)tk_conn_age_ms(c),
		 (unsigned long long)tk_conn_bytes_in(c),
		 (unsigned long long)tk_conn_bytes_out(c), reason(err));
	fputs(line, stderr);
}

void
serve_log_event(const struct serve_log *log, enum tk_server_event ev,
		struct tk_conn *c, const struct tk_addr *peer, int err)
{
	if (log->quiet && ev != TK_SERVER_ERROR)
		return;
	if (log->format == LOG_TEXT)
		log_text(log, ev, c, peer, err);
	else if (ev != TK_SERVER_OPEN) /* one record per connection */
		log_machine(log, ev, c, peer, err);
}

/* The totals' formats: literals, each checked against the arguments. */
#define STATS_JSON                                                             \
	"{\"ts\":\"%s\",\"event\":\"stats\",\"when\":\"%s\","                  \
	"\"accepted\":%llu,\"rejected\":%llu,\"active\":%llu,"                 \
	"\"closed\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,"                \
	"\"errors\":{\"reset\":%llu,\"timeout\":%llu,"                         \
	"\"line\":%llu,\"other\":%llu,\"accept\":%llu},\"denied\":%llu,"       \
	"\"pp_refused\":%llu}\n"
#define STATS_LOGFMT                                                           \
	"ts=%s event=stats when=%s accepted=%llu rejected=%llu "               \
	"active=%llu closed=%llu bytes_in=%llu bytes_out=%llu "                \
	"errors_reset=%llu errors_timeout=%llu errors_line=%llu "              \
	"errors_other=%llu errors_accept=%llu denied=%llu pp_refused=%llu\n"
#define STATS_TEXT                                                             \
	"stats %s (%s): accepted %llu, rejected %llu, active "                 \
	"%llu, closed %llu, %llu bytes in, %llu bytes out; "                   \
	"errors: %llu reset, %llu timeout, %llu line, %llu "                   \
	"other, %llu accept; denied %llu; proxy-protocol refused %llu\n"

void
serve_log_stats(const struct serve_log *log, const char *what,
		const struct tk_server_stats *st)
{
	char ts[40];
	if (log->format == LOG_TEXT)
		cli_timestamp(ts, sizeof(ts));
	else
		cli_iso_time(ts, sizeof(ts));
	fprintf(stderr,
		log->format == LOG_JSON	    ? STATS_JSON
		: log->format == LOG_LOGFMT ? STATS_LOGFMT
					    : STATS_TEXT,
		log->format == LOG_TEXT ? what : ts,
		log->format == LOG_TEXT ? ts : what,
		(unsigned long long)st->accepted,
		(unsigned long long)st->rejected,
		(unsigned long long)st->active, (unsigned long long)st->closed,
		(unsigned long long)st->bytes_in,
		(unsigned long long)st->bytes_out,
		(unsigned long long)st->resets,
		(unsigned long long)st->timeouts,
		(unsigned long long)st->line_errors,
		(unsigned long long)(st->conn_errors - st->resets -
				     st->timeouts - st->line_errors),
		(unsigned long long)st->accept_errors,
		(unsigned long long)st->denied,
		(unsigned long long)st->pp_refused);
}
