/* server.c: listeners, accepting with back-off, the set of live connections. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* Accepts per wakeup (fairness), and the pause after running out of fds. */
#define SERVER_MAX_ACCEPTS     64
#define SERVER_ACCEPT_PAUSE_MS 500
#define SERVER_MAX_LISTENERS   16

struct listener {
	int fd;
	struct tk_addr addr;
};

struct tk_server {
	struct tk_loop *loop;
	struct tk_server_opts opts;
	const struct tk_service *svc;
	void *svc_arg;
	struct listener listeners[SERVER_MAX_LISTENERS];
	size_t nlisteners;
	struct tk_conn *conns; /* every live connection */
	struct tk_server_stats stats;
	struct tk_timer *backoff;
	bool accepting;
	bool stopping;
};

void
tk_server_opts_init(struct tk_server_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->backlog = TK_DEFAULT_BACKLOG;
	tk_conn_opts_init(&opts->conn);
}

struct tk_server *
tk_server_new(struct tk_loop *loop, const struct tk_server_opts *opts,
	      const struct tk_service *svc, void *svc_arg)
{
	struct tk_server *s;

	if (loop == NULL || svc == NULL) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->loop = loop;
	if (opts != NULL)
		s->opts = *opts;
	else
		tk_server_opts_init(&s->opts);
	if (s->opts.backlog <= 0)
		s->opts.backlog = TK_DEFAULT_BACKLOG;
	s->svc = svc;
	s->svc_arg = svc_arg;
	return s;
}

int
tk_server_listen(struct tk_server *s, const struct tk_addr *addr, bool v6only)
{
	struct listener *l;
	int fd, err;

	if (s->nlisteners == SERVER_MAX_LISTENERS)
		return -ENOSPC;
	fd = tk__sock_listen(addr, s->opts.backlog, v6only, false);
	if (fd < 0)
		return fd;
	l = &s->listeners[s->nlisteners];
	l->fd = fd;
	err = tk__sock_local(fd, &l->addr);
	if (err < 0) {
		tk__close(fd);
		return err;
	}
	s->nlisteners++;
	return 0;
}

size_t
tk_server_listener_count(const struct tk_server *s)
{
	return s->nlisteners;
}

const struct tk_addr *
tk_server_addr(const struct tk_server *s, size_t i)
{
	return i < s->nlisteners ? &s->listeners[i].addr : NULL;
}

static void
emit(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c, int err)
{
	if (s->opts.on_event != NULL)
		s->opts.on_event(s, ev, c, err, s->opts.event_arg);
}

static void on_accept(struct tk_loop *loop, int fd, unsigned events, void *arg);

static int
set_accepting(struct tk_server *s, bool on)
{
	for (size_t i = 0; i < s->nlisteners; i++) {
		int err = on ? tk_loop_watch(s->loop, s->listeners[i].fd,
					     TK_READABLE, on_accept, s)
			     : 0;

		if (!on)
			tk_loop_unwatch(s->loop, s->listeners[i].fd);
		if (err < 0 && err != -EEXIST)
			return err;
	}
	s->accepting = on;
	return 0;
}

static void
on_backoff(struct tk_timer *t, void *arg)
{
	struct tk_server *s = arg;

	(void)t;
	if (!s->stopping)
		(void)set_accepting(s, true);
}

/*
 * Out of descriptors or memory: the pending connection stays queued in the
 * kernel and the listener stays readable, so polling it would spin.  Pause
 * accepting instead, and try again shortly.
 */
static void
pause_accepting(struct tk_server *s)
{
	if (s->backoff == NULL)
		s->backoff = tk_timer_new(s->loop, on_backoff, s);
	if (s->backoff == NULL)
		return;
	(void)set_accepting(s, false);
	tk_timer_start(s->backoff, SERVER_ACCEPT_PAUSE_MS, 0);
}

static void
link_conn(struct tk_server *s, struct tk_conn *c)
{
	*tk__conn_next(c) = s->conns;
	*tk__conn_prev(c) = NULL;
	if (s->conns != NULL)
		*tk__conn_prev(s->conns) = c;
	s->conns = c;
}

static void
unlink_conn(struct tk_server *s, struct tk_conn *c)
{
	struct tk_conn *next = *tk__conn_next(c), *prev = *tk__conn_prev(c);

	if (prev != NULL)
		*tk__conn_next(prev) = next;
	else
		s->conns = next;
	if (next != NULL)
		*tk__conn_prev(next) = prev;
}

/*
 * An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d; report
 * it as the IPv4 address it is.
 */
static void
unmap_v4(struct tk_addr *a)
{
	struct sockaddr_in in4;

	if (a->u.sa.sa_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr))
		return;
	memset(&in4, 0, sizeof(in4));
	in4.sin_family = AF_INET;
	in4.sin_port = a->u.in6.sin6_port;
	memcpy(&in4.sin_addr, &a->u.in6.sin6_addr.s6_addr[12], 4);
	a->u.in4 = in4;
	a->len = sizeof(in4);
}

static void
on_accept(struct tk_loop *loop, int lfd, unsigned events, void *arg)
{
	struct tk_server *s = arg;

	(void)loop;
	(void)events;
	for (int i = 0; i < SERVER_MAX_ACCEPTS && s->accepting; i++) {
		struct tk_addr peer;
		struct tk_conn *c;
		int fd;

		peer.len = sizeof(peer.u);
		fd = accept4(lfd, &peer.u.sa, &peer.len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = -errno;

			if (err == -EAGAIN || err == -EINTR)
				return;
			s->stats.accept_errors++;
			emit(s, TK_SERVER_ERROR, NULL, err);
			if (err == -EMFILE || err == -ENFILE ||
			    err == -ENOBUFS || err == -ENOMEM) {
				pause_accepting(s);
				return;
			}
			continue; /* ECONNABORTED and kin: the next one */
		}
		unmap_v4(&peer);
		c = tk__conn_accepted(s->loop, s, fd, &peer, &s->opts.conn,
				      s->svc, s->svc_arg);
		if (c == NULL) {
			tk__close(fd);
			s->stats.accept_errors++;
			emit(s, TK_SERVER_ERROR, NULL, -ENOMEM);
			pause_accepting(s);
			return;
		}
		link_conn(s, c);
		s->stats.accepted++;
		s->stats.active++;
		emit(s, TK_SERVER_OPEN, c, 0);
		tk__conn_start(c);
	}
}

void
tk__server_conn_closed(struct tk_server *s, struct tk_conn *c, int err)
{
	unlink_conn(s, c);
	s->stats.active--;
	s->stats.closed++;
	s->stats.bytes_in += tk_conn_bytes_in(c);
	s->stats.bytes_out += tk_conn_bytes_out(c);
	if (err != 0)
		s->stats.conn_errors++;
	emit(s, TK_SERVER_CLOSE, c, err);
}

int
tk_server_start(struct tk_server *s)
{
	if (s->nlisteners == 0)
		return -EDESTADDRREQ;
	return set_accepting(s, true);
}

void
tk_server_stop(struct tk_server *s)
{
	(void)set_accepting(s, false);
	tk_timer_free(s->backoff);
	s->backoff = NULL;
	for (size_t i = 0; i < s->nlisteners; i++)
		tk__close(s->listeners[i].fd);
	s->nlisteners = 0;
	/* Unlinking waits for each deferred close: the list holds still. */
	for (struct tk_conn *c = s->conns; c != NULL; c = *tk__conn_next(c))
		tk_conn_close(c, -ECANCELED);
}

void
tk_server_request_stop(struct tk_server *s)
{
	s->stopping = true;
	tk_loop_stop(s->loop);
}

bool
tk_server_stopping(const struct tk_server *s)
{
	return s->stopping;
}

void
tk_server_get_stats(const struct tk_server *s, struct tk_server_stats *out)
{
	*out = s->stats;
	/* Live connections' bytes count too, not only those that ended. */
	for (const struct tk_conn *c = s->conns; c != NULL;
	     c = *tk__conn_next((struct tk_conn *)c)) {
		out->bytes_in += tk_conn_bytes_in(c);
		out->bytes_out += tk_conn_bytes_out(c);
	}
}

struct tk_loop *
tk_server_loop(const struct tk_server *s)
{
	return s->loop;
}

void
tk_server_free(struct tk_server *s)
{
	if (s == NULL)
		return;
	tk_server_stop(s);
	/* Let the closes finish: they still report to s. */
	tk__loop_run_deferred(s->loop);
	free(s);
}
