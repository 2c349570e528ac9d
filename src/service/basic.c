/* basic.c: tutorial 2's "basic" server as a service: greeting, one message, its
 * echo. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "tcpkit.h"

#define SHUTDOWN_REPLY "You told me to shut down!\n"
#define REFUSED_REPLY                                                          \
	"Shutdown refused: only a client on this machine's loopback may stop " \
	"this server\n"

/* Marks a connection whose one message has been answered. */
static char answered;

/*
 * Local time as Python's str(datetime.datetime.now()) prints it, microseconds
 * left out when they are zero, exactly as Python does.
 */
static size_t
timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	if (tv.tv_usec != 0)
		n += (size_t)snprintf(buf + n, len - n, ".%06ld",
				      (long)tv.tv_usec);
	return n;
}

static int
basic_open(struct tk_conn *c, void *arg)
{
	struct tk_server *s = tk_conn_server(c);
	char msg[96], ts[48];
	int n;

	(void)arg;
	/* The greeting and the one answer fit, whatever max_pending is. */
	tk_conn_reserve_output(c, sizeof(msg) + TK_BASIC_MAX_MESSAGE +
					  sizeof(REFUSED_REPLY) + 16);
	/* The one message must come within line_timeout (slowloris). */
	if (s != NULL && tk_server_get_opts(s)->line_timeout_ms != 0)
		tk_conn_set_deadline(c, tk_server_get_opts(s)->line_timeout_ms,
				     TK_ELINETIMEOUT);
	timestamp(ts, sizeof(ts));
	n = snprintf(msg, sizeof(msg), "You connected at [%s]\n", ts);
	return tk_conn_write(c, msg, (size_t)n);
}

static bool
is_space(char ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* Python's data.strip().lower() == b"shutdown". */
static bool
is_shutdown(const char *p, size_t n)
{
	static const char word[] = "shutdown";

	while (n > 0 && is_space(*p)) {
		p++;
		n--;
	}
	while (n > 0 && is_space(p[n - 1]))
		n--;
	if (n != sizeof(word) - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != word[i])
			return false;
	}
	return true;
}

static void
answer(struct tk_conn *c, const char *data, size_t n,
       const struct tk_basic_opts *opts)
{
	/* One write, as the tutorial's sendall: a client reads it in one recv.
	 */
	char reply[TK_BASIC_MAX_MESSAGE + sizeof(REFUSED_REPLY) + 16];
	struct tk_server *srv = tk_conn_server(c);
	bool stop = false;
	size_t len = 0;

	tk_conn_set_data(c, &answered);
	tk_conn_set_deadline(c, 0, 0);
	if (n > TK_BASIC_MAX_MESSAGE)
		n = TK_BASIC_MAX_MESSAGE; /* the tutorial's recv(4096) */
	memcpy(reply, "You sent: [", 11);
	len = 11;
	if (n > 0)	   /* at EOF data is NULL: memcpy must not see it */
		if (n > 0) /* a client may close without a word: data is NULL */
			memcpy(reply + len, data, n);
	len += n;
	memcpy(reply + len, "]\n", 2);
	len += 2;
	if (is_shutdown(data, n)) {
		bool allowed = (opts != NULL && opts->allow_remote_shutdown) ||
			       tk_addr_is_loopback(tk_conn_peer(c));
		const char *more = allowed ? SHUTDOWN_REPLY : REFUSED_REPLY;

		memcpy(reply + len, more, strlen(more));
		len += strlen(more);
		stop = allowed && srv != NULL;
	}
	if (tk_conn_write(c, reply, len) < 0)
		return;
	if (stop)
		tk_server_request_stop(srv);
	tk_conn_end(c);
}

static void
basic_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	if (tk_conn_data(c) == &answered)
		return;
	/* A client that closes without a word gets "You sent: []". */
	answer(c, data, n == TK_EOF ? 0 : (size_t)n, arg);
}

const struct tk_service tk_service_basic = {
	.name = "basic",
	.flags = TK_SERVICE_TEXT,
	.open = basic_open,
	.data = basic_data,
};
