/* server_rec.h: the event log, the logging echo service and the small
 * helpers shared by the server unit tests (test_server*.c). */
#ifndef TK_TEST_SERVER_REC_H
#define TK_TEST_SERVER_REC_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Everything here is static inline, as in helpers.h. */

#define MAXC 256

/*
 * What a server did, in order: O open event, o service open, c service
 * close, C close event, E error event, R reject event.
 */
struct slog {
	struct tk_server *s;
	char ev[1024];
	size_t nev;
	struct tk_conn *opened[MAXC];
	int nopened;
	int svc_close_err[MAXC];
	int nsvc_closes;
	int close_err[MAXC];
	int ncloses;
	int errors[MAXC];
	int nerrors;
	bool stop_on_open;
};

static inline void
slog_add(struct slog *l, char ch)
{
	if (l->nev < sizeof(l->ev) - 1)
		l->ev[l->nev++] = ch;
}

static inline void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	struct slog *l = arg;

	cr_assert_eq(s, l->s);
	switch (ev) {
	case TK_SERVER_OPEN:
		cr_assert_not_null(c);
		cr_assert_eq(err, 0);
		cr_assert_eq(tk_conn_server(c), s);
		cr_assert_eq(peer, tk_conn_peer(c));
		cr_assert_lt(l->nopened, MAXC);
		l->opened[l->nopened++] = c;
		slog_add(l, 'O');
		break;
	case TK_SERVER_CLOSE: {
		bool known = false;

		for (int i = 0; i < l->nopened; i++)
			known |= l->opened[i] == c;
		cr_assert(known, "close event for a conn never opened");
		cr_assert_eq(peer, tk_conn_peer(c));
		cr_assert_lt(l->ncloses, MAXC);
		l->close_err[l->ncloses++] = err;
		slog_add(l, 'C');
		break;
	}
	case TK_SERVER_ERROR:
		cr_assert_null(c);
		cr_assert_null(peer);
		cr_assert_lt(err, 0);
		if (l->nerrors < MAXC)
			l->errors[l->nerrors] = err;
		l->nerrors++;
		slog_add(l, 'E');
		break;
	case TK_SERVER_REJECT:
		cr_assert_null(c);
		/* The client turned away, for the log. */
		cr_assert_not_null(peer);
		cr_assert(tk_addr_is_loopback(peer));
		slog_add(l, 'R');
		break;
	case TK_SERVER_DRAINED:
		cr_assert_null(c);
		cr_assert_null(peer);
		slog_add(l, 'D');
		break;
	default:
		cr_assert_fail("unknown server event %d", (int)ev);
	}
}

/* Echo, with the service's own callbacks logged too. */
static inline int
lecho_open(struct tk_conn *c, void *arg)
{
	struct slog *l = arg;

	slog_add(l, 'o');
	if (l->stop_on_open)
		tk_server_request_stop(tk_conn_server(c));
	return 0;
}

static inline void
lecho_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	(void)arg;
	tk_service_echo.data(c, data, n, NULL);
}

static inline void
lecho_close(struct tk_conn *c, int err, void *arg)
{
	struct slog *l = arg;

	(void)c;
	cr_assert_lt(l->nsvc_closes, MAXC);
	l->svc_close_err[l->nsvc_closes++] = err;
	slog_add(l, 'c');
}

static const struct tk_service lecho = {
	.name = "logged echo",
	.open = lecho_open,
	.data = lecho_data,
	.close = lecho_close,
};

static inline struct tk_server *
lserver(struct tk_loop *loop, struct slog *l, const char *ip,
	struct tk_server_opts *o, struct tk_addr *addr)
{
	struct tk_server_opts def;

	if (o == NULL) {
		tk_server_opts_init(&def);
		o = &def;
	}
	o->on_event = on_event;
	o->event_arg = l;
	l->s = t_server(loop, ip, o, &lecho, l, addr);
	return l->s;
}

static inline struct tk_server_stats
stats(const struct tk_server *s)
{
	struct tk_server_stats st;

	tk_server_get_stats(s, &st);
	return st;
}

/* A plain blocking connect: 0 or the errno. */
static inline int
try_connect(const struct tk_addr *a)
{
	int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err = 0;

	cr_assert(fd >= 0);
	if (connect(fd, &a->u.sa, a->len) < 0)
		err = errno;
	close(fd);
	return err;
}

#endif /* TK_TEST_SERVER_REC_H */
