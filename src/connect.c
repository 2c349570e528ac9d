/* connect.c: a client connection's connect phase: every address of the
 * list tried in turn, Happy Eyeballs style (RFC 8305), under one deadline. */
#include <errno.h>
#include <stdlib.h>

#include "conn_int.h"

struct attempt {
	int fd; /* -1: not in flight */
	struct tk_addr addr;
};

/* What only a connecting client needs; freed once connected. */
struct connecting {
	struct tk_addr *addrs;
	size_t naddrs;
	size_t next_addr;
	struct attempt *attempts;
	size_t inflight;
	struct tk_timer *eyeballs;
	struct tk_addr source; /* copy of opts.source */
	int last_err;
};

void
tk__connect_done(struct tk_conn *c)
{
	struct connecting *cx = c->cx;

	if (cx == NULL)
		return;
	for (size_t i = 0; cx->attempts != NULL && i < cx->naddrs; i++) {
		if (cx->attempts[i].fd >= 0) {
			tk_loop_unwatch(c->loop, cx->attempts[i].fd);
			tk__close(cx->attempts[i].fd);
		}
	}
	free(cx->attempts);
	free(cx->addrs);
	tk_timer_free(cx->eyeballs);
	free(cx);
	c->cx = NULL;
	c->opts.source = NULL; /* it pointed into cx */
}

const struct tk_addr *
tk__connect_trying(const struct tk_conn *c)
{
	const struct connecting *cx = c->cx;

	for (size_t i = 0; cx != NULL && i < cx->naddrs; i++)
		if (cx->attempts[i].fd >= 0)
			return &cx->attempts[i].addr;
	return NULL;
}

static void start_next(struct tk_conn *c);

static void
attempt_failed(struct tk_conn *c, struct attempt *a, int err)
{
	tk_loop_unwatch(c->loop, a->fd);
	tk__close(a->fd);
	a->fd = -1;
	c->cx->inflight--;
	c->cx->last_err = err;
	tk__conn_set_error(c, &a->addr, err);
	/* A failure makes way for the next address at once. */
	start_next(c);
}

static void
on_attempt(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct tk_conn *c = arg;
	struct connecting *cx = c->cx;
	struct attempt *a = NULL;
	int err;

	(void)loop;
	(void)events;
	if (cx == NULL || c->state != ST_CONNECTING)
		return;
	for (size_t i = 0; i < cx->naddrs && a == NULL; i++)
		if (cx->attempts[i].fd == fd)
			a = &cx->attempts[i];
	if (a == NULL)
		return;
	err = tk__sock_error(fd);
	if (err == 0)
		err = tk__sock_peer(fd, &c->peer);
	if (err < 0) {
		attempt_failed(c, a, err);
		return;
	}
	/* The winner: the others are closed, and the fd changes hands. */
	tk_loop_unwatch(c->loop, fd);
	c->fd = fd;
	c->peer = a->addr;
	a->fd = -1;
	tk__connect_done(c);
	free(c->errmsg);
	c->errmsg = NULL;
	tk__conn_start(c);
}

static void
on_eyeballs(struct tk_timer *t, void *arg)
{
	(void)t;
	start_next(arg);
}

static void
start_next(struct tk_conn *c)
{
	struct connecting *cx = c->cx;

	while (cx->next_addr < cx->naddrs) {
		struct attempt *a = &cx->attempts[cx->next_addr];
		int fd, err;

		a->addr = cx->addrs[cx->next_addr++];
		fd = tk__sock_connect(&a->addr, c->opts.source);
		if (fd < 0) {
			cx->last_err = fd;
			tk__conn_set_error(c, &a->addr, fd);
			continue;
		}
		err = tk__loop_watch_own(c->loop, fd, TK_WRITABLE, on_attempt,
					 c);
		if (err < 0) {
			tk__close(fd);
			cx->last_err = err;
			tk__conn_set_error(c, &a->addr, err);
			continue;
		}
		a->fd = fd;
		cx->inflight++;
		/* Happy Eyeballs: the next address gets its turn soon. */
		if (cx->next_addr < cx->naddrs && cx->eyeballs != NULL)
			tk_timer_start(cx->eyeballs, TK_HAPPY_EYEBALLS_DELAY_MS,
				       0);
		return;
	}
	if (cx->inflight == 0)
		tk_conn_close(c, cx->last_err);
}

/*
 * Order addresses RFC 8305 style: keep the resolver's preference, but
 * alternate families, starting with the family of the first address.
 */
static void
interleave(const struct tk_addrlist *list, struct tk_addr *out)
{
	int first = tk_addr_family(&list->addrs[0]);
	size_t n = 0, i = 0, j = 0;

	while (n < list->count) {
		while (i < list->count &&
		       tk_addr_family(&list->addrs[i]) != first)
			i++;
		if (i < list->count)
			out[n++] = list->addrs[i++];
		while (j < list->count &&
		       tk_addr_family(&list->addrs[j]) == first)
			j++;
		if (j < list->count)
			out[n++] = list->addrs[j++];
	}
}

int
tk_conn_connect(struct tk_loop *loop, const struct tk_addrlist *list,
		const struct tk_conn_opts *opts, const struct tk_service *svc,
		void *arg, struct tk_conn **out)
{
	struct connecting *cx;
	struct tk_conn *c;

	if (loop == NULL || list == NULL || list->count == 0 || svc == NULL)
		return -EINVAL;
	c = tk__conn_new(loop, opts, svc, arg);
	if (c == NULL)
		return -ENOMEM;
	c->state = ST_CONNECTING;
	cx = c->cx = calloc(1, sizeof(*cx));
	if (cx == NULL)
		goto out_free;
	cx->last_err = -ECONNREFUSED;
	cx->naddrs = list->count;
	cx->addrs = calloc(list->count, sizeof(*cx->addrs));
	cx->attempts = calloc(list->count, sizeof(*cx->attempts));
	if (cx->addrs == NULL || cx->attempts == NULL)
		goto out_free;
	for (size_t i = 0; i < list->count; i++)
		cx->attempts[i].fd = -1;
	interleave(list, cx->addrs);
	if (opts != NULL && opts->source != NULL) {
		cx->source = *opts->source;
		c->opts.source = &cx->source;
	}
	if (tk__conn_attach_layer(c, opts != NULL ? opts->servername : NULL) <
	    0)
		goto out_free;
	if (list->count > 1) {
		cx->eyeballs = tk__timer_alloc(loop, on_eyeballs, c);
		if (cx->eyeballs == NULL)
			goto out_free;
	}
	tk_timer_start(&c->timer, c->opts.connect_timeout_ms, 0);
	*out = c;
	start_next(c);
	return 0;

out_free:
	tk_timer_stop(&c->timer);
	tk__lnode_del(&c->node);
	tk__connect_done(c);
	if (c->tp->close != NULL)
		c->tp->close(c);
	free(c);
	return -ENOMEM;
}
