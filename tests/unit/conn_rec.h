/* conn_rec.h: the recording client service and the full-backlog listener
 * shared by the connection unit tests (test_conn*.c, test_connect.c). */
#ifndef TK_TEST_CONN_REC_H
#define TK_TEST_CONN_REC_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "short_tp.h"

/* Everything here is static inline, as in helpers.h. */

/* A service that records what happens to one client connection. */
struct rec {
	struct tk_conn *c;    /* NULL once closed */
	struct tk_conn *gone; /* the pointer, kept to check it was freed */
	int opens, closes, drains, eofs;
	size_t datas;
	int close_err;
	char last_error[160];
	char *in;
	size_t in_len, in_cap;
	char log[64]; /* o open, d data, e EOF, r drain, c close */
	size_t nlog;
	int open_ret;
	uint64_t t_open, t_close, t_data;
	size_t pending_at_data; /* tk_conn_pending() at the first data */
	size_t pending_at_drain;
	bool in_callback; /* a callback of this conn is on the stack */
	bool close_inside_callback;
	/* Optional reactions. */
	void (*on_open)(struct rec *r);
	void (*on_data)(struct rec *r, const char *d, ssize_t n);
	void (*on_close)(struct rec *r);
	void *user;
};

static inline void
rec_log(struct rec *r, char ch)
{
	/* Runs of data are one 'd'. */
	if (ch == 'd' && r->nlog > 0 && r->log[r->nlog - 1] == 'd')
		return;
	if (r->nlog < sizeof(r->log) - 1)
		r->log[r->nlog++] = ch;
}

static inline int
rec_open(struct tk_conn *c, void *arg)
{
	struct rec *r = arg;

	cr_assert(tk_conn_is_open(c));
	r->c = c;
	r->opens++;
	r->t_open = t_now_ms();
	rec_log(r, 'o');
	r->in_callback = true;
	if (r->on_open != NULL)
		r->on_open(r);
	r->in_callback = false;
	return r->open_ret;
}

static inline void
rec_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct rec *r = arg;

	cr_assert_eq(c, r->c);
	cr_assert_eq(r->closes, 0, "data after close");
	r->in_callback = true;
	if (n == TK_EOF) {
		r->eofs++;
		rec_log(r, 'e');
	} else {
		cr_assert_gt(n, 0);
		cr_assert_eq(r->eofs, 0, "data after EOF");
		if (r->datas++ == 0)
			r->pending_at_data = tk_conn_pending(c);
		if (r->in_cap - r->in_len < (size_t)n) {
			while (r->in_cap - r->in_len < (size_t)n)
				r->in_cap = r->in_cap ? r->in_cap * 2 : 4096;
			r->in = realloc(r->in, r->in_cap);
			cr_assert_not_null(r->in);
		}
		memcpy(r->in + r->in_len, data, (size_t)n);
		r->in_len += (size_t)n;
		r->t_data = t_now_ms();
		rec_log(r, 'd');
	}
	if (r->on_data != NULL)
		r->on_data(r, data, n);
	r->in_callback = false;
}

static inline void
rec_drain(struct tk_conn *c, void *arg)
{
	struct rec *r = arg;

	cr_assert_eq(c, r->c);
	r->drains++;
	r->pending_at_drain = tk_conn_pending(c);
	rec_log(r, 'r');
}

static inline void
rec_close(struct tk_conn *c, int err, void *arg)
{
	struct rec *r = arg;

	if (r->in_callback)
		r->close_inside_callback = true;
	r->closes++;
	cr_assert_eq(r->closes, 1, "close callback ran %d times", r->closes);
	cr_assert(!tk_conn_is_open(c));
	r->close_err = err;
	r->t_close = t_now_ms();
	snprintf(r->last_error, sizeof(r->last_error), "%s",
		 tk_conn_last_error(c));
	rec_log(r, 'c');
	if (r->on_close != NULL)
		r->on_close(r);
	r->gone = c;
	r->c = NULL;
}

static const struct tk_service rec_svc = {
	.name = "rec",
	.open = rec_open,
	.data = rec_data,
	.drain = rec_drain,
	.close = rec_close,
};

static inline struct tk_conn *
rec_connect(struct tk_loop *loop, struct tk_addr *addrs, size_t n,
	    const struct tk_conn_opts *o, struct rec *r)
{
	struct tk_addrlist l = t_list(addrs, n);
	struct tk_conn *c = NULL;

	cr_assert_eq(tk_conn_connect(loop, &l, o, &rec_svc, r, &c), 0);
	cr_assert_not_null(c);
	cr_assert_eq(r->closes, 0, "a callback ran inside tk_conn_connect");
	cr_assert_eq(r->opens, 0, "a callback ran inside tk_conn_connect");
	return c;
}

static inline void
rec_free(struct rec *r)
{
	free(r->in);
	r->in = NULL;
}

static inline bool
rec_got(const struct rec *r, const char *s)
{
	size_t n = strlen(s);

	return r->in_len == n && (n == 0 || memcmp(r->in, s, n) == 0);
}

/*
 * A listener whose accept queue is full: it never answers new SYNs, so a
 * connect to it stays in progress.  listen(fd, 0) queues one connection;
 * the raw connects that fill it are never accepted.
 */
struct blackhole {
	int lfd;
	int fills[3];
	struct tk_addr addr;
};

static inline void
blackhole_open(struct blackhole *b, const char *ip)
{
	b->lfd = t_raw_listen(ip, 0, &b->addr);
	for (int i = 0; i < 3; i++) {
		b->fills[i] =
			socket(b->addr.u.sa.sa_family,
			       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		cr_assert(b->fills[i] >= 0);
		cr_assert(connect(b->fills[i], &b->addr.u.sa, b->addr.len) ==
				  0 ||
			  errno == EINPROGRESS);
	}
}

static inline void
blackhole_close(struct blackhole *b)
{
	for (int i = 0; i < 3; i++)
		close(b->fills[i]);
	close(b->lfd);
}

/*
 * A connection on the short transport (short_tp.h) and a raw peer on the
 * other end of its socketpair.  svc NULL: the recording service, on x->r.
 */
struct spair {
	struct tk_loop *loop;
	struct short_tp st;
	struct rec r;
	struct tk_conn *c;
	struct peer p;
};

static inline void
spair_open(struct spair *x, size_t max, unsigned eagain_every,
	   const struct tk_conn_opts *o, const struct tk_service *svc)
{
	int fd;

	memset(x, 0, sizeof(*x));
	x->loop = t_loop_new();
	cr_assert_not_null(x->loop);
	x->st.max = max;
	x->st.eagain_every = eagain_every;
	x->c = short_tp_conn(x->loop, &x->st, o, svc ? svc : &rec_svc,
			     svc ? NULL : &x->r, &fd);
	peer_adopt(&x->p, x->loop, fd);
}

static inline void
spair_close(struct spair *x)
{
	/* The transport's close runs when c is freed. */
	if (!x->st.closed) {
		tk_conn_close(x->c, 0);
		RUN_UNTIL(x->loop, 1000, x->st.closed);
	}
	peer_free(&x->p);
	rec_free(&x->r);
	tk_loop_free(x->loop);
}

/* A client and a raw peer accepted by hand from a raw listener. */
struct pair {
	struct tk_loop *loop;
	int lfd;
	struct tk_addr addr;
	struct rec r;
	struct tk_conn *c;
	struct peer p;
};

static inline void
pair_open(struct pair *x, const struct tk_conn_opts *o, int peer_rcvbuf)
{
	memset(x, 0, sizeof(*x));
	x->loop = t_loop_new();
	x->lfd = t_raw_listen("127.0.0.1", 8, &x->addr);
	/* Accepted sockets inherit it: a small window fills up soon. */
	if (peer_rcvbuf > 0)
		cr_assert(setsockopt(x->lfd, SOL_SOCKET, SO_RCVBUF,
				     &peer_rcvbuf, sizeof(peer_rcvbuf)) == 0);
	x->c = rec_connect(x->loop, &x->addr, 1, o, &x->r);
	RUN_UNTIL(x->loop, 3000, x->r.opens == 1);
	peer_accept(&x->p, x->loop, x->lfd);
}

static inline void
pair_close(struct pair *x)
{
	if (x->r.closes == 0) {
		tk_conn_close(x->c, 0);
		RUN_UNTIL(x->loop, 1000, x->r.closes == 1);
	}
	peer_free(&x->p);
	close(x->lfd);
	rec_free(&x->r);
	tk_loop_free(x->loop);
}

#endif /* TK_TEST_CONN_REC_H */
