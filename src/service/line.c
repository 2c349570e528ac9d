/* line.c: a line server: every complete line back as it came, within the
 * server's line limits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

/* Kept only while a partial line waits or the server drains. */
struct line_state {
	struct tk_buf partial;
	bool draining; /* end once the line in flight is answered */
};

static size_t
max_line(struct tk_conn *c)
{
	struct tk_server *s = tk_conn_server(c);

	return s ? tk_server_get_opts(s)->max_line : TK_DEFAULT_MAX_LINE;
}

static uint64_t
line_timeout(struct tk_conn *c)
{
	struct tk_server *s = tk_conn_server(c);

	return s ? tk_server_get_opts(s)->line_timeout_ms : 0;
}

static struct line_state *
state(struct tk_conn *c, bool create)
{
	struct line_state *st = tk_conn_data(c);

	if (st == NULL && create) {
		st = calloc(1, sizeof(*st));
		if (st == NULL)
			return NULL;
		/* A line and its "\r\n" at most: never more is buffered. */
		tk_buf_init(&st->partial, max_line(c) + 2);
		tk_conn_set_data(c, st);
	}
	return st;
}

#define TOO_LONG "error: line too long\n"

static void
too_long(struct tk_conn *c)
{
	/* A failed write has closed c already (and said why). */
	if (tk_conn_write(c, TOO_LONG, sizeof(TOO_LONG) - 1) == 0)
		tk_conn_end_error(c, TK_ELINETOOLONG);
}

static int
line_open(struct tk_conn *c, void *arg)
{
	(void)arg;
	/*
	 * One read can complete a kept line (max_line + "\r\n") besides
	 * its own bytes, or end in the error line: room for both.
	 */
	tk_conn_reserve_output(c, max_line(c) + 2 + sizeof(TOO_LONG));
	/* The first line's deadline runs from the connection's start. */
	if (line_timeout(c) != 0)
		tk_conn_set_deadline(c, line_timeout(c), TK_ELINETIMEOUT);
	return 0;
}

/*
 * Answer the complete lines in data[0..n) in one write; a partial line at
 * the end is left to the caller.  Returns the bytes that formed complete
 * lines, or -1 if c is ending: a line was too long (every line before it
 * is answered first) or the write failed.
 */
static ssize_t
complete_lines(struct tk_conn *c, const char *data, size_t n, size_t max)
{
	size_t done = 0;
	bool bad = false;

	while (done < n) {
		size_t len;
		ssize_t used = tk_line_parse(data + done, n - done, max, &len);

		if (used < 0) {
			bad = true;
			break;
		}
		if (used == 0)
			break;
		done += (size_t)used;
	}
	if (done > 0 && tk_conn_write(c, data, done) < 0)
		return -1;
	if (bad) {
		too_long(c);
		return -1;
	}
	return (ssize_t)done;
}

static void
line_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct line_state *st = state(c, false);
	size_t max = max_line(c), len;
	bool completed = false; /* a line was answered in this call */
	/*
	 * No line in progress, and one answered before: these bytes begin a
	 * new line (the first line's deadline runs from the open).
	 */
	bool fresh = (st == NULL || tk_buf_len(&st->partial) == 0) &&
		     tk_conn_bytes_out(c) + tk_conn_pending(c) > 0;
	ssize_t done;

	(void)arg;
	if (n == TK_EOF) {
		/* A last line without its newline still comes back. */
		if (st != NULL && tk_buf_len(&st->partial) > 0 &&
		    tk_conn_write(c, tk_buf_peek(&st->partial),
				  tk_buf_len(&st->partial)) < 0)
			return; /* c is closed, with the reason */
		tk_conn_end(c);
		return;
	}
	if (st != NULL && tk_buf_len(&st->partial) > 0) {
		/* Finish the kept line with the first bytes up to '\n'. */
		const char *nl = memchr(data, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - data) + 1 : (size_t)n;
		ssize_t used;

		if (tk_buf_append(&st->partial, data, take) < 0) {
			too_long(c);
			return;
		}
		used = tk_line_parse(tk_buf_peek(&st->partial),
				     tk_buf_len(&st->partial), max, &len);
		if (used < 0) {
			too_long(c);
			return;
		}
		if (used == 0)
			return; /* still partial */
		if (tk_conn_write(c, tk_buf_peek(&st->partial),
				  tk_buf_len(&st->partial)) < 0)
			return;
		tk_buf_consume(&st->partial, tk_buf_len(&st->partial));
		tk_buf_trim(&st->partial);
		completed = true;
		data += take;
		n -= (ssize_t)take;
	}
	done = complete_lines(c, data, (size_t)n, max);
	if (done < 0)
		return;
	if ((size_t)done < (size_t)n) {
		/* A line begins: keep it, and give it its own deadline. */
		st = state(c, true);
		if (st == NULL || tk_buf_append(&st->partial, data + done,
						(size_t)n - (size_t)done) < 0) {
			tk_conn_close(c,
				      st == NULL ? -ENOMEM : TK_ELINETOOLONG);
			return;
		}
		if ((done > 0 || completed || fresh) && line_timeout(c) != 0)
			tk_conn_set_deadline(c, line_timeout(c),
					     TK_ELINETIMEOUT);
	} else if (st == NULL || tk_buf_len(&st->partial) == 0) {
		/* Between lines: the idle timeout governs, not this one. */
		tk_conn_set_deadline(c, 0, 0);
	}
	if (st != NULL && st->draining && tk_buf_len(&st->partial) == 0)
		tk_conn_end(c);
}

static void
line_stop(struct tk_conn *c, void *arg)
{
	struct line_state *st = state(c, false);

	(void)arg;
	/* A line half received is an exchange in flight: let it finish. */
	if (st != NULL && tk_buf_len(&st->partial) > 0)
		st->draining = true;
	else
		tk_conn_end(c);
}

static void
line_close(struct tk_conn *c, int err, void *arg)
{
	struct line_state *st = tk_conn_data(c);

	(void)err;
	(void)arg;
	if (st != NULL) {
		tk_buf_free(&st->partial);
		free(st);
	}
}

const struct tk_service tk_service_line = {
	.name = "line",
	.flags = TK_SERVICE_TEXT,
	.open = line_open,
	.data = line_data,
	.stop = line_stop,
	.close = line_close,
};
