/* connect.c: a client connection's connect phase: the name resolved off
 * the loop's thread, then every address tried in turn, Happy Eyeballs
 * style (RFC 8305), under one deadline. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void resolve_cancel(struct tk_conn *c);

void
tk__connect_done(struct tk_conn *c)
{
	struct connecting *cx = c->cx;

	if (c->rs != NULL)
		resolve_cancel(c);
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

/* What to bind before connecting to the address to; NULL: nothing. */
static const struct tk_addr *
source_for(const struct tk_conn *c, const struct tk_addr *to,
	   struct tk_addr *any)
{
	if (c->opts.source != NULL || c->opts.source_port == 0)
		return c->opts.source;
	memset(any, 0, sizeof(*any));
	any->u.sa.sa_family = to->u.sa.sa_family;
	any->len = to->u.sa.sa_family == AF_INET6 ? sizeof(any->u.in6)
						  : sizeof(any->u.in4);
	tk_addr_set_port(any, c->opts.source_port);
	return any;
}

static void
start_next(struct tk_conn *c)
{
	struct connecting *cx = c->cx;

	while (cx->next_addr < cx->naddrs) {
		struct attempt *a = &cx->attempts[cx->next_addr];
		struct tk_addr any;
		int fd, err;

		a->addr = cx->addrs[cx->next_addr++];
		fd = tk__sock_connect(&a->addr, source_for(c, &a->addr, &any));
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
		/*
		 * Without the timer (out of memory) the next address waits
		 * for this one to fail: slower, never wrong.
		 */
		if (cx->next_addr < cx->naddrs && cx->eyeballs != NULL)
			(void)tk_timer_start(cx->eyeballs,
					     TK_HAPPY_EYEBALLS_DELAY_MS, 0);
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

/*
 * Start the connect phase of c (connecting, its deadline running) on the
 * addresses of list.  0, or -ENOMEM with nothing started.
 */
static int
connect_list(struct tk_conn *c, const struct tk_addrlist *list,
	     const struct tk_addr *source)
{
	struct connecting *cx = c->cx = calloc(1, sizeof(*cx));

	if (cx == NULL)
		return -ENOMEM;
	cx->last_err = -ECONNREFUSED;
	cx->naddrs = list->count;
	cx->addrs = calloc(list->count, sizeof(*cx->addrs));
	cx->attempts = calloc(list->count, sizeof(*cx->attempts));
	if (cx->addrs == NULL || cx->attempts == NULL)
		goto out_free;
	for (size_t i = 0; i < list->count; i++)
		cx->attempts[i].fd = -1;
	interleave(list, cx->addrs);
	if (source != NULL) {
		cx->source = *source;
		c->opts.source = &cx->source;
	}
	if (list->count > 1) {
		cx->eyeballs = tk__timer_alloc(c->loop, on_eyeballs, c);
		if (cx->eyeballs == NULL)
			goto out_free;
	}
	return 0;

out_free:
	tk__connect_done(c);
	return -ENOMEM;
}

/* Undo a connection no callback has seen, for an error return. */
static void
discard(struct tk_conn *c)
{
	tk_timer_stop(&c->timer);
	tk__lnode_del(&c->node);
	tk__connect_done(c);
	tk__proxy_free(c->px);
	if (c->tp->close != NULL)
		c->tp->close(c);
	free(c->errmsg);
	free(c->local);
	free(c);
}

int
tk_conn_connect(struct tk_loop *loop, const struct tk_addrlist *list,
		const struct tk_conn_opts *opts, const struct tk_service *svc,
		void *arg, struct tk_conn **out)
{
	struct tk_conn *c;

	if (loop == NULL || list == NULL || list->count == 0 || svc == NULL)
		return -EINVAL;
	/* A proxy is asked for a name, which an address list has lost. */
	if (opts != NULL && opts->proxy != NULL)
		return -EINVAL;
	c = tk__conn_new(loop, opts, svc, arg);
	if (c == NULL)
		return -ENOMEM;
	c->state = ST_CONNECTING;
	if (connect_list(c, list, opts != NULL ? opts->source : NULL) < 0 ||
	    tk__conn_attach_layer(c, opts != NULL ? opts->servername : NULL) <
		    0) {
		discard(c);
		return -ENOMEM;
	}
	if (tk_timer_start(&c->timer, c->opts.connect_timeout_ms, 0) < 0) {
		discard(c); /* no deadline, no connect */
		return -ENOMEM;
	}
	*out = c;
	start_next(c);
	return 0;
}

/*
 * A name being resolved for tk_conn_connect_host(), shared by the resolver
 * thread and the connection under lock.  Whoever is last frees it: the
 * thread if the connection was closed while it resolved; the posted
 * on_resolved() (or the loop's drop of it) once the answer is posted; the
 * close if the answer could not be posted (the deadline closes c then).
 */
enum rs_state {
	RS_RESOLVING,
	RS_POSTED,
	RS_ORPHAN, /* resolved, but tk_loop_post() failed */
};

struct resolving {
	pthread_mutex_t lock;
	enum rs_state state;
	bool cancelled;
	struct tk_conn *c;
	struct tk_loop *loop;
	char *host, *port;
	struct tk_addr source;
	bool has_source;
	int err;
	struct tk_addrlist *list;
	/*
	 * Through a proxy, host and port are the proxy's; the target's name
	 * is resolved too when the proxy is to be given an address (SOCKS5),
	 * and its port when it is a service name.
	 */
	char *thost, *tport;
	bool resolve_thost, resolve_tport;
	char tip[TK_ADDRSTRLEN];
	uint16_t tportnum;
	const char *failed; /* the name that did not resolve */
};

static void
rs_free(struct resolving *rs)
{
	pthread_mutex_destroy(&rs->lock);
	tk_addrlist_free(rs->list);
	free(rs->host);
	free(rs->port);
	free(rs->thost);
	free(rs->tport);
	free(rs);
}

/* A dropped post (the loop was freed first): its connection is gone. */
static void
rs_drop(void *arg)
{
	struct resolving *rs = arg;

	if (rs->c != NULL)
		rs->c->rs = NULL;
	rs_free(rs);
}

/* Drop the addresses opts.acl refuses: 0, or TK_EDENIED if none is left. */
static int
keep_allowed(struct tk_conn *c, struct tk_addrlist *list, const char *host)
{
	size_t n = 0;
	char *msg = NULL;

	for (size_t i = 0; i < list->count; i++)
		if (tk_acl_check(c->opts.acl, &list->addrs[i]) == 0)
			list->addrs[n++] = list->addrs[i];
	list->count = n;
	if (n > 0)
		return 0;
	if (asprintf(&msg, "%s: %s", host, tk_strerror(TK_EDENIED)) >= 0) {
		tk__conn_set_detail(c, msg);
		free(msg);
	}
	return TK_EDENIED;
}

static void
on_resolved(struct tk_loop *loop, void *arg)
{
	struct resolving *rs = arg;
	struct tk_conn *c = rs->c;
	bool cancelled;
	int err;

	(void)loop;
	pthread_mutex_lock(&rs->lock);
	cancelled = rs->cancelled;
	pthread_mutex_unlock(&rs->lock);
	if (cancelled) {
		rs_free(rs);
		return;
	}
	c->rs = NULL;
	err = rs->err;
	if (err < 0) {
		char *msg = NULL;

		if (asprintf(&msg, "%s: %s",
			     rs->failed != NULL ? rs->failed : rs->host,
			     tk_strerror(err)) >= 0) {
			tk__conn_set_detail(c, msg);
			free(msg);
		}
	} else if (c->px == NULL && c->opts.acl != NULL &&
		   (err = keep_allowed(c, rs->list, rs->host)) < 0) {
		/* No address of the name may be tried. */
	} else {
		if (c->px != NULL && (rs->resolve_thost || rs->resolve_tport))
			tk__proxy_set_target(c->px,
					     rs->resolve_thost ? rs->tip : NULL,
					     rs->tportnum);
		err = connect_list(c, rs->list,
				   rs->has_source ? &rs->source : NULL);
	}
	if (err < 0)
		tk_conn_close(c, err);
	else
		start_next(c);
	rs_free(rs);
}

/*
 * The target's name (its first address, as a client without a proxy would
 * try first) or only its service name's port.  0 or a resolver error.
 */
static int
resolve_target(struct resolving *rs)
{
	struct tk_addrlist *tl = NULL;
	int err;

	if (rs->resolve_thost)
		err = tk_resolve(rs->thost, rs->tport, AF_UNSPEC, 0, &tl);
	else
		err = tk_resolve("127.0.0.1", rs->tport, AF_INET,
				 TK_RESOLVE_NUMERIC, &tl);
	if (err < 0) {
		rs->failed = rs->resolve_thost ? rs->thost : rs->tport;
		return err;
	}
	tk_addr_format_ip(&tl->addrs[0], rs->tip, sizeof(rs->tip));
	rs->tportnum = tk_addr_port(&tl->addrs[0]);
	tk_addrlist_free(tl);
	return 0;
}

static void *
resolve_main(void *arg)
{
	struct resolving *rs = arg;
	struct tk_addrlist *list = NULL;
	int err = tk_resolve(rs->host, rs->port, AF_UNSPEC, 0, &list);

	if (err < 0)
		rs->failed = rs->host;
	if (err == 0 && (rs->resolve_thost || rs->resolve_tport))
		err = resolve_target(rs);
	pthread_mutex_lock(&rs->lock);
	if (rs->cancelled) {
		pthread_mutex_unlock(&rs->lock);
		tk_addrlist_free(list);
		rs_free(rs);
		return NULL;
	}
	rs->err = err;
	rs->list = list;
	/* Under the lock: a close now waits, and finds it posted. */
	if (tk__loop_post_drop(rs->loop, on_resolved, rs_drop, rs) == 0)
		rs->state = RS_POSTED;
	else
		rs->state = RS_ORPHAN;
	pthread_mutex_unlock(&rs->lock);
	return NULL;
}

/* c closes while its name resolves: no callback of the resolve follows. */
static void
resolve_cancel(struct tk_conn *c)
{
	struct resolving *rs = c->rs;
	bool orphan;

	c->rs = NULL;
	pthread_mutex_lock(&rs->lock);
	rs->cancelled = true;
	rs->c = NULL;
	orphan = rs->state == RS_ORPHAN;
	pthread_mutex_unlock(&rs->lock);
	if (orphan)
		rs_free(rs);
}

/*
 * Whether px's proxy is an IP literal with a numeric port (into *a) and
 * the target needs no lookup here either: then nothing is resolved.
 */
static bool
proxy_direct(const struct tk__proxying *px, struct tk_addr *a)
{
	const struct tk_proxy *p = tk__proxy_of(px);
	uint16_t port;

	if (tk__proxy_resolves_here(px) || !tk__proxy_has_port(px) ||
	    tk_port_parse(p->port, &port) < 0 ||
	    tk_addr_from_ip(p->host, port, a) < 0)
		return false;
	return true;
}

int
tk_conn_connect_host(struct tk_loop *loop, const char *host, const char *port,
		     const struct tk_conn_opts *opts,
		     const struct tk_service *svc, void *arg,
		     struct tk_conn **out)
{
	struct resolving *rs;
	struct tk_conn *c;
	struct tk_addr direct;
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	const char *name = opts != NULL && opts->servername != NULL
				   ? opts->servername
				   : host;
	int err;

	if (loop == NULL || host == NULL || svc == NULL || out == NULL)
		return -EINVAL;
	if (opts != NULL && opts->proxy != NULL &&
	    (port == NULL || opts->proxy->kind == TK_PROXY_NONE))
		return -EINVAL;
	c = tk__conn_new(loop, opts, svc, arg);
	if (c == NULL)
		return -ENOMEM;
	c->state = ST_CONNECTING;
	if (opts != NULL && opts->proxy != NULL) {
		c->px = tk__proxy_new(opts->proxy, host, port);
		if (c->px == NULL) {
			discard(c);
			return -ENOMEM;
		}
	}
	/* A proxy at an address, nothing to resolve: no thread. */
	if (c->px != NULL && proxy_direct(c->px, &direct)) {
		struct tk_addrlist l = { 1, &direct };

		if (connect_list(c, &l, opts->source) < 0 ||
		    tk__conn_attach_layer(c, name) < 0 ||
		    tk_timer_start(&c->timer, c->opts.connect_timeout_ms, 0) <
			    0) {
			discard(c);
			return -ENOMEM;
		}
		*out = c;
		start_next(c);
		return 0;
	}
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL) {
		discard(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&rs->lock, NULL);
	rs->loop = loop;
	rs->c = c;
	if (c->px != NULL) {
		const struct tk_proxy *p = tk__proxy_of(c->px);

		rs->host = strdup(p->host);
		rs->port = strdup(p->port);
		rs->thost = strdup(host);
		rs->tport = strdup(port);
		rs->resolve_thost = tk__proxy_resolves_here(c->px);
		rs->resolve_tport = !tk__proxy_has_port(c->px);
		if (rs->thost == NULL || rs->tport == NULL) {
			free(rs->host); /* out of memory, below */
			rs->host = NULL;
		}
	} else {
		rs->host = strdup(host);
		rs->port = port != NULL ? strdup(port) : NULL;
	}
	if (opts != NULL && opts->source != NULL) {
		rs->source = *opts->source;
		rs->has_source = true;
	}
	err = -ENOMEM;
	if (rs->host == NULL || (port != NULL && rs->port == NULL) ||
	    tk__conn_attach_layer(c, name) < 0)
		goto out_free;
	/* The deadline covers the name's resolution too. */
	if ((err = tk_timer_start(&c->timer, c->opts.connect_timeout_ms, 0)) <
	    0)
		goto out_free;
	/* The resolver takes no signals: they stay with the loop's thread. */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&thread, &attr, resolve_main, rs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err < 0)
		goto out_free;
	c->rs = rs;
	*out = c;
	return 0;

out_free:
	rs_free(rs);
	discard(c);
	return err;
}
