/* test_conn_lines.c: the line framing of TK_SERVICE_LINE_FRAMING connections.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_rec.h"
#include "helpers.h"
#include "internal.h"
#include "short_tp.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(conn, .timeout = 30);

struct lrec {
	struct tk_conn *c;
	char got[16][48];
	int n;
	bool eof;
	int closes, close_err;
	int pause_at; /* pause after this line (1: the first), 0: never */
	bool echo;    /* write every line back */
};

static int
lrec_open(struct tk_conn *c, void *arg)
{
	((struct lrec *)arg)->c = c;
	return 0;
}

static void
lrec_data(struct tk_conn *c, const char *d, ssize_t n, void *arg)
{
	struct lrec *l = arg;

	cr_assert(!l->eof, "data after EOF");
	if (n == TK_EOF) {
		l->eof = true;
		tk_conn_end(c);
		return;
	}
	cr_assert_gt(n, 0);
	cr_assert_lt(n, (ssize_t)sizeof(l->got[0]), "a %zd-byte line", n);
	cr_assert_lt(l->n, 16);
	memcpy(l->got[l->n], d, (size_t)n);
	l->got[l->n++][n] = '\0';
	if (l->echo)
		cr_assert_eq(tk_conn_write(c, d, (size_t)n), 0);
	if (l->pause_at == l->n)
		tk_conn_pause(c);
}

static void
lrec_close(struct tk_conn *c, int err, void *arg)
{
	struct lrec *l = arg;

	(void)c;
	l->closes++;
	l->close_err = err;
}

static const struct tk_service lrec_svc = {
	.name = "lrec",
	.flags = TK_SERVICE_LINE_FRAMING,
	.open = lrec_open,
	.data = lrec_data,
	.close = lrec_close,
};

static const struct tk_service lrec_text_svc = {
	.name = "lrec-text",
	.flags = TK_SERVICE_LINE_FRAMING | TK_SERVICE_TEXT,
	.open = lrec_open,
	.data = lrec_data,
	.close = lrec_close,
};

static void
lrec_expect(const struct lrec *l, const char *const *want, int n)
{
	cr_assert_eq(l->n, n, "%d lines, not %d (first: \"%s\")", l->n, n,
		     l->got[0]);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(l->got[i], want[i], "line %d", i);
}

/*
 * Feed in[0..k) then the rest and a FIN, for every k, through reads of
 * (k % 4) + 1 bytes or more: the same lines come out of every split.
 */
static void
frame_every_split(const struct tk_service *svc, size_t max_line, const char *in,
		  const char *const *want, int nwant, int close_err,
		  const char *peer_gets)
{
	size_t len = strlen(in);

	for (size_t k = 0; k <= len; k++) {
		struct tk_conn_opts o;
		struct spair x;
		struct lrec l = { 0 };
		int fd;

		tk_conn_opts_init(&o);
		o.no_delay = false;
		o.max_line = max_line;
		memset(&x, 0, sizeof(x));
		x.loop = t_loop_new();
		x.st.max = k % 4 + 1 + (k % 3 == 0 ? 64 : 0);
		x.c = short_tp_conn(x.loop, &x.st, &o, svc, &l, &fd);
		peer_adopt(&x.p, x.loop, fd);
		if (k > 0)
			peer_send(&x.p, in, k);
		RUN_UNTIL(x.loop, 3000,
			  l.closes == 1 || tk_conn_bytes_in(x.c) == k);
		if (l.closes == 0 && k < len)
			peer_send(&x.p, in + k, len - k);
		if (l.closes == 0)
			peer_shutdown(&x.p);
		RUN_UNTIL(x.loop, 3000, l.closes == 1 && x.p.eof);
		cr_assert_eq(l.close_err, close_err, "split %zu: close(%d)", k,
			     l.close_err);
		lrec_expect(&l, want, nwant);
		cr_assert_eq(l.eof, close_err == 0, "split %zu", k);
		cr_assert(peer_got(&x.p, peer_gets), "split %zu: peer got %.*s",
			  k, (int)x.p.in_len, x.p.in);
		spair_close(&x);
	}
}

Test(conn, line_framing_one_line_per_call_at_every_split)
{
	static const char *const want[] = { "ab\n", "cd\r\n", "\n",
					    "\r\n", "efgh\n", "last" };

	frame_every_split(&lrec_svc, 0, "ab\ncd\r\n\n\r\nefgh\nlast", want, 6,
			  0, "");
}

Test(conn, line_framing_no_last_partial_line)
{
	static const char *const want[] = { "one\n", "two\n" };

	frame_every_split(&lrec_svc, 0, "one\ntwo\n", want, 2, 0, "");
}

/*
 * max_line 4: "abcd\r\n" fits, "toolong" does not: the lines before it
 * are delivered, it and everything after are not; a text service's peer
 * is told why, then sees the end.
 */
Test(conn, line_framing_too_long_at_every_split)
{
	static const char *const want[] = { "ok\n", "abcd\r\n", "wxyz\n" };

	frame_every_split(&lrec_text_svc, 4, "ok\nabcd\r\nwxyz\ntoolong\nno\n",
			  want, 3, TK_ELINETOOLONG, "error: line too long\n");
	frame_every_split(&lrec_svc, 4, "ok\nabcd\r\nwxyz\nabcde", want, 3,
			  TK_ELINETOOLONG, "");
}

/* Too long is known before the newline comes: no waiting for it. */
Test(conn, line_framing_too_long_without_newline)
{
	struct tk_conn_opts o;
	struct spair x;
	struct lrec l = { 0 };
	int fd;

	tk_conn_opts_init(&o);
	o.no_delay = false;
	o.max_line = 8;
	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, &o, &lrec_text_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "123456789");
	RUN_UNTIL(x.loop, 3000, x.p.eof);
	peer_shutdown(&x.p); /* spares the linger */
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	cr_assert_eq(l.close_err, TK_ELINETOOLONG);
	cr_assert_eq(l.n, 0);
	cr_assert(peer_got(&x.p, "error: line too long\n"));
	spair_close(&x);
}

/* A pause inside data holds the lines not yet delivered, and the EOF. */
Test(conn, line_framing_pause_holds_the_rest)
{
	static const char *const want[] = { "1\n", "22\n", "333\n", "4" };
	struct spair x;
	struct lrec l = { .pause_at = 1 };
	int fd;

	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, NULL, &lrec_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "1\n22\n333\n4");
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 3000, tk_conn_bytes_in(x.c) == 10);
	t_run_for(x.loop, 50);
	cr_assert_eq(l.n, 1, "delivered while paused");
	cr_assert(!l.eof);
	tk_conn_resume(x.c);
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	lrec_expect(&l, want, 4);
	cr_assert(l.eof);
	cr_assert_eq(l.close_err, 0);
	spair_close(&x);
}

/*
 * line_timeout_ms: a line must be complete in time (the first from the
 * open); between lines no deadline runs.
 */
Test(conn, line_framing_line_deadline)
{
	struct tk_conn_opts o;
	struct spair x;
	struct lrec l = { 0 };
	uint64_t t0;
	int fd;

	tk_conn_opts_init(&o);
	o.no_delay = false;
	o.line_timeout_ms = 200;
	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, &o, &lrec_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "first\n");
	RUN_UNTIL(x.loop, 3000, l.n == 1);
	t_run_for(x.loop, 400); /* between lines: no deadline */
	cr_assert_eq(l.closes, 0, "closed between lines");
	t0 = t_now_ms();
	peer_send_str(&x.p, "sec");
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	cr_assert_eq(l.close_err, TK_ELINETIMEOUT);
	cr_assert_geq(t_now_ms() - t0, 190);
	cr_assert_eq(l.n, 1);
	spair_close(&x);
}

/*
 * A server's line-framing service takes the server's max_line, and its
 * busy line goes to TK_SERVICE_TEXT services only.
 */
Test(conn, line_framing_server_max_line)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts so;
	struct tk_addr sa;
	struct tk_server *s;
	struct lrec l = { .echo = true };
	struct peer p;

	tk_server_opts_init(&so);
	so.max_line = 5;
	s = t_server(loop, "127.0.0.1", &so, &lrec_text_svc, &l, &sa);
	peer_connect(&p, loop, &sa);
	peer_send_str(&p, "12345\n123456\n");
	RUN_UNTIL(loop, 3000, p.eof);
	cr_assert(peer_got(&p, "12345\nerror: line too long\n"),
		  "peer got %.*s", (int)p.in_len, p.in);
	peer_shutdown(&p);
	RUN_UNTIL(loop, 3000, l.closes == 1);
	cr_assert_eq(l.close_err, TK_ELINETOOLONG);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* Paused on the last line, which had no newline: its EOF waits, once. */
Test(conn, line_framing_pause_on_the_last_partial_line)
{
	static const char *const want[] = { "a\n", "last" };
	struct spair x;
	struct lrec l = { .pause_at = 2 };
	int fd;

	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, NULL, &lrec_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "a\nlast");
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 3000, l.n == 2);
	t_run_for(x.loop, 50);
	cr_assert(!l.eof, "EOF while paused");
	tk_conn_resume(x.c);
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	lrec_expect(&l, want, 2);
	cr_assert(l.eof);
	spair_close(&x);
}
