/* server.c: listeners and shared-nothing workers, limits, accept back-off,
 * draining. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "server_pp.h"
#include "tcpkit/reload.h"

/* Accepts per wakeup (fairness), and the pause after running out of fds. */
#define SERVER_MAX_ACCEPTS     64
#define SERVER_ACCEPT_PAUSE_MS 500
#define SERVER_MAX_LISTENERS   TK__MAX_LISTENERS
#define SERVER_MAX_WORKERS     256

/*
 * A worker: one loop, its own listening socket for every address, and the
 * connections it accepted.  Only its thread touches it, except the
 * counters (read by anyone) and posted work.
 */
struct worker {
	struct tk_server *srv;
	unsigned id;
	struct tk_loop *loop;
	bool own_loop; /* created here, run on its own thread */
	pthread_t thread;
	bool thread_started;
	int lfds[SERVER_MAX_LISTENERS];
	struct tk_conn *conns;
	struct tk__ppwait *ppwaits; /* accepted, their PROXY header awaited */
	struct tk__counters ctr;
	struct tk_timer *backoff;
	bool accepting;
	bool closed; /* listeners closed: no more accepting */
	bool paused; /* tk_server_pause(): listeners open, not accepting */
	/*
	 * What new connections get: the server's, as this worker last saw
	 * them (tk_server_set_tls(), _set_acl() post changes here).
	 */
	struct tk_conn_opts conn;
	const struct tk_acl *acl;
};

struct tk_server {
	struct tk_loop *loop; /* the owner's */
	struct tk_server_opts opts;
	const struct tk_service *svc;
	void *svc_arg;
	struct tk_addr addrs[SERVER_MAX_LISTENERS];
	struct tk__unix_file ufiles[SERVER_MAX_LISTENERS]; /* to remove */
	bool shared[SERVER_MAX_LISTENERS]; /* one socket, every worker a copy */
	size_t naddrs;
	struct worker *workers;
	unsigned nworkers;
	bool started;
	atomic_bool stopping;	     /* a stop was requested (once is enough) */
	atomic_bool draining;	     /* tk_server_drain() ran */
	_Atomic uint64_t open_conns; /* across workers, for max_conns */
	atomic_uint drained_workers; /* listeners closed by the drain */
	atomic_bool drained_sent;    /* TK_SERVER_DRAINED posted */
	bool freeing;		     /* tk_server_free(): no more events */
};

void
tk_server_opts_init(struct tk_server_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->backlog = TK_DEFAULT_BACKLOG;
	opts->workers = 1;
	opts->max_line = TK_DEFAULT_MAX_LINE;
	tk_conn_opts_init(&opts->conn);
}

int
tk_server_new(struct tk_loop *loop, const struct tk_server_opts *opts,
	      const struct tk_service *svc, void *svc_arg,
	      struct tk_server **out)
{
	struct tk_server *s;
	int err;

	*out = NULL;
	if (loop == NULL || svc == NULL)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->loop = loop;
	if (opts != NULL)
		s->opts = *opts;
	else
		tk_server_opts_init(&s->opts);
	if (s->opts.backlog <= 0)
		s->opts.backlog = TK_DEFAULT_BACKLOG;
	if (s->opts.max_line == 0)
		s->opts.max_line = TK_DEFAULT_MAX_LINE;
	/* A line-framing service's connections take the server's limits. */
	if (s->opts.conn.max_line == 0)
		s->opts.conn.max_line = s->opts.max_line;
	if (s->opts.conn.line_timeout_ms == 0)
		s->opts.conn.line_timeout_ms = s->opts.line_timeout_ms;
	/* The listeners set the kernel's bound from it (tk_server_listen). */
	if (s->opts.conn.max_pending == 0)
		s->opts.conn.max_pending = TK_DEFAULT_MAX_PENDING;
	/* Whose PROXY headers to believe must be said (trust is explicit). */
	if (s->opts.workers > SERVER_MAX_WORKERS ||
	    (s->opts.proxy_protocol && s->opts.proxy_from == NULL)) {
		free(s);
		return -EINVAL;
	}
	s->svc = svc;
	s->svc_arg = svc_arg;
	s->nworkers = s->opts.workers > 1 ? s->opts.workers : 1;
	s->workers = calloc(s->nworkers, sizeof(*s->workers));
	if (s->workers == NULL) {
		free(s);
		return -ENOMEM;
	}
	/* Ours until freed or replaced: the caller may free theirs. */
	tk__tls_ctx_ref(s->opts.conn.tls);
	tk__acl_ref(s->opts.acl);
	/* Every worker is whole before any can fail: the free below reads
	 * them all (a zeroed lfd would be fd 0). */
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		w->srv = s;
		w->id = i;
		w->conn = s->opts.conn;
		w->acl = s->opts.acl;
		for (size_t j = 0; j < SERVER_MAX_LISTENERS; j++)
			w->lfds[j] = -1;
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (s->nworkers == 1) {
			w->loop = loop;
			continue;
		}
		if ((err = tk_loop_new(&w->loop)) < 0) {
			tk_server_free(s);
			return err;
		}
		w->own_loop = true;
	}
	*out = s;
	return 0;
}

static int share_listener(struct tk_server *s, int fd,
			  const struct tk_addr *addr);

int
tk_server_listen(struct tk_server *s, const struct tk_addr *addr, bool v6only)
{
	struct tk_addr bound = *addr;
	size_t i = s->naddrs;
	int err;

	if (addr->u.sa.sa_family == AF_UNIX)
		return tk_server_listen_unix(s, addr, NULL);
	if (i == SERVER_MAX_LISTENERS)
		return -ENOSPC;
	if (s->started)
		return -EBUSY;
	/* One socket per worker; port 0 resolves on the first. */
	for (unsigned k = 0; k < s->nworkers; k++) {
		enum tk__reuseport rp = s->nworkers == 1 ? TK__REUSEPORT_NONE
					: k == 0	 ? TK__REUSEPORT_FIRST
							 : TK__REUSEPORT_JOIN;
		int fd = tk__sock_listen(&bound, s->opts.backlog, v6only, rp);

		if (fd < 0) {
			err = fd;
			goto out_close;
		}
		s->workers[k].lfds[i] = fd;
		/* Set once here, the accepted sockets inherit them. */
		err = tk__sock_conn_opts(fd, s->opts.conn.no_delay,
					 s->opts.conn.sndbuf,
					 s->opts.conn.max_pending);
		if (err == 0)
			err = tk__sock_keepalive(fd, &s->opts.conn);
		if (err < 0)
			goto out_close;
		if (k == 0 && (err = tk__sock_local(fd, &bound)) < 0)
			goto out_close;
	}
	s->addrs[i] = bound;
	s->naddrs++;
	return 0;

out_close:
	for (unsigned k = 0; k < s->nworkers; k++) {
		tk__close(s->workers[k].lfds[i]);
		s->workers[k].lfds[i] = -1;
	}
	return err;
}

int
tk_server_listen_unix(struct tk_server *s, const struct tk_addr *addr,
		      const struct tk_unix_listen_opts *uo)
{
	size_t i = s->naddrs;
	int fd, err;

	if (addr->u.sa.sa_family != AF_UNIX)
		return -EINVAL;
	if (i == SERVER_MAX_LISTENERS)
		return -ENOSPC;
	if (s->started)
		return -EBUSY;
	fd = tk__unix_listen(addr, s->opts.backlog, uo, &s->ufiles[i]);
	if (fd < 0)
		return fd;
	if ((err = share_listener(s, fd, addr)) < 0) {
		tk__close(fd);
		tk__unix_remove(&s->ufiles[i]);
	}
	return err;
}

/*
 * Listener s->naddrs is fd, one socket every worker watches (a copy of
 * the fd each, closed on its own) and accepts from when it can; the
 * others find EAGAIN, which is normal.  UNIX sockets have no
 * SO_REUSEPORT balancing, and a socket made elsewhere is only one.  On
 * error fd is left open: the caller's.
 */
static int
share_listener(struct tk_server *s, int fd, const struct tk_addr *addr)
{
	size_t i = s->naddrs;
	int err;

	/* The accepted sockets inherit them; UNIX takes the send bound only. */
	err = tk__sock_conn_opts(fd, s->opts.conn.no_delay, s->opts.conn.sndbuf,
				 s->opts.conn.max_pending);
	if (err == 0 && addr->u.sa.sa_family != AF_UNIX)
		err = tk__sock_keepalive(fd, &s->opts.conn);
	if (err < 0)
		return err;
	for (unsigned k = 1; k < s->nworkers; k++) {
		int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

		if (dfd < 0) {
			err = -errno;
			while (--k > 0) {
				tk__close(s->workers[k].lfds[i]);
				s->workers[k].lfds[i] = -1;
			}
			return err;
		}
		s->workers[k].lfds[i] = dfd;
	}
	s->workers[0].lfds[i] = fd;
	s->shared[i] = true;
	s->addrs[i] = *addr;
	s->naddrs++;
	return 0;
}

int
tk_server_listen_fd(struct tk_server *s, int fd)
{
	struct tk_addr addr;
	int on = 0, type = 0, flags, err;
	socklen_t len = sizeof(on);

	if (s->started)
		return -EBUSY;
	if (s->naddrs == SERVER_MAX_LISTENERS)
		return -ENOSPC;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0)
		return -errno;
	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (!on || type != SOCK_STREAM)
		return -EINVAL;
	if ((err = tk__sock_local(fd, &addr)) < 0)
		return err;
	if (addr.u.sa.sa_family != AF_INET && addr.u.sa.sa_family != AF_INET6 &&
	    addr.u.sa.sa_family != AF_UNIX)
		return -EINVAL;
	if ((flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return share_listener(s, fd, &addr);
}

size_t
tk_server_listener_fds(const struct tk_server *s, int *fds, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < s->naddrs; i++) {
		unsigned each = s->shared[i] ? 1 : s->nworkers;

		for (unsigned k = 0; k < each; k++) {
			int fd = s->workers[k].lfds[i];

			if (fd < 0)
				continue;
			if (n < max)
				fds[n] = fd;
			n++;
		}
	}
	return n;
}

#define PLAN_MAX   (SERVER_MAX_LISTENERS * 4)
#define PLAN_TRIES 8 /* port 0 on several addresses: tries for one port */

/* The addresses to listen on, in order, each once. */
struct plan {
	struct tk_addr addrs[PLAN_MAX];
	bool v6only[PLAN_MAX];
	bool optional[PLAN_MAX]; /* the default ::1: skipped if missing */
	size_t n;
};

static int
plan_add(struct plan *p, const struct tk_addr *a, bool optional)
{
	for (size_t i = 0; i < p->n; i++)
		if (tk_addr_equal(&p->addrs[i], a))
			return 0;
	/* More than a server can listen on anyway. */
	if (p->n == PLAN_MAX)
		return -ENOSPC;
	p->addrs[p->n] = *a;
	p->optional[p->n] = optional;
	p->n++;
	return 0;
}

static int
plan_host(struct plan *p, const char *text, unsigned flags)
{
	char host[TK_HOSTLEN], port[TK_PORTLEN];
	struct tk_addrlist *list;
	bool literal;
	int err;

	/* "[::1]" is how people often write an IPv6 address; no port. */
	if (tk_hostport_split(text, host, port) < 0 || host[0] == '\0' ||
	    port[0] != '\0')
		return TK_EBADADDR;
	/* A colon means an IPv6 literal, never a name to look up. */
	literal = strchr(host, ':') != NULL;
	err = tk_resolve(
		host, NULL, AF_UNSPEC,
		literal || (flags & TK_LISTEN_NUMERIC) ? TK_RESOLVE_NUMERIC : 0,
		&list);
	if (err == TK_ENOHOST && literal)
		err = TK_EBADADDR;
	if (err < 0)
		return err;
	for (size_t j = 0; j < list->count && err == 0; j++)
		err = plan_add(p, &list->addrs[j], false);
	tk_addrlist_free(list);
	return err;
}

static int
make_plan(struct plan *p, const char *const *hosts, size_t n, unsigned flags,
	  struct tk_listen_why *why)
{
	bool v4any = false;
	int err;

	if (n == 0) {
		struct tk_addr a;

		(void)tk_addr_from_ip("127.0.0.1", 0, &a);
		(void)plan_add(p, &a, false);
		(void)tk_addr_from_ip("::1", 0, &a);
		return plan_add(p, &a, true);
	}
	for (size_t i = 0; i < n; i++)
		if ((err = plan_host(p, hosts[i], flags)) < 0) {
			why->host = hosts[i];
			return err;
		}
	for (size_t i = 0; i < p->n; i++)
		if (tk_addr_family(&p->addrs[i]) == AF_INET &&
		    tk_addr_is_any(&p->addrs[i]))
			v4any = true;
	/* "::" is dual-stack unless 0.0.0.0 is asked for as well. */
	for (size_t i = 0; i < p->n; i++)
		p->v6only[i] = tk_addr_family(&p->addrs[i]) == AF_INET6 &&
			       (!tk_addr_is_any(&p->addrs[i]) || v4any);
	return 0;
}

/* Close the listeners from the first-th on, as if never opened. */
static void
unlisten_from(struct tk_server *s, size_t first)
{
	for (size_t i = first; i < s->naddrs; i++)
		for (unsigned k = 0; k < s->nworkers; k++) {
			tk__close(s->workers[k].lfds[i]);
			s->workers[k].lfds[i] = -1;
		}
	s->naddrs = first;
}

/*
 * One try at listening on every planned address; with port 0 the first
 * one's port is used for the rest, so one number reaches them all.
 */
static int
plan_listen(struct tk_server *s, struct plan *p, uint16_t port,
	    struct tk_listen_why *why, size_t *failed)
{
	for (size_t i = 0; i < p->n; i++) {
		int err;

		tk_addr_set_port(&p->addrs[i], port);
		err = tk_server_listen(s, &p->addrs[i], p->v6only[i]);
		if (err == 0 && port == 0)
			port = tk_addr_port(&s->addrs[s->naddrs - 1]);
		if (err == 0)
			continue;
		if (p->optional[i] &&
		    (err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT)) {
			why->skipped = p->addrs[i];
			why->skipped_err = err;
			continue;
		}
		*failed = i;
		return err;
	}
	return 0;
}

int
tk_server_listen_hosts(struct tk_server *s, const char *const *hosts, size_t n,
		       uint16_t port, unsigned flags, struct tk_listen_why *why)
{
	struct tk_listen_why spare;
	struct plan *p;
	size_t first = s->naddrs, failed = 0;
	int err = 0;

	if (why == NULL)
		why = &spare;
	memset(why, 0, sizeof(*why));
	if (s->started)
		return -EBUSY;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	err = make_plan(p, hosts, n, flags, why);
	for (int tries = 0; err == 0 && tries < PLAN_TRIES; tries++) {
		memset(&why->skipped, 0, sizeof(why->skipped));
		why->skipped_err = 0;
		err = plan_listen(s, p, port, why, &failed);
		if (err == 0)
			break;
		why->addr = p->addrs[failed];
		unlisten_from(s, first);
		/* A port free on one address may be taken on another. */
		if (port != 0 || err != -EADDRINUSE || failed == 0)
			break;
		err = tries + 1 < PLAN_TRIES ? 0 : -EAGAIN;
	}
	free(p);
	if (err == 0)
		memset(&why->addr, 0, sizeof(why->addr));
	return err;
}

size_t
tk_server_listener_count(const struct tk_server *s)
{
	return s->naddrs;
}

const struct tk_addr *
tk_server_addr(const struct tk_server *s, size_t i)
{
	return i < s->naddrs ? &s->addrs[i] : NULL;
}

static void
emit(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
     const struct tk_addr *peer, int err)
{
	if (s->opts.on_event != NULL)
		s->opts.on_event(s, ev, c, peer, err, s->opts.event_arg);
}

static void on_accept(struct tk_loop *loop, int fd, unsigned events, void *arg);
static void conn_handshake(struct tk_conn *c);
static void conn_gone(struct tk_conn *c, int err);
static void conn_closed(struct tk_conn *c, int err);

static const struct tk__conn_owner server_owner = {
	.handshake = conn_handshake,
	.gone = conn_gone,
	.closed = conn_closed,
};

static int
set_accepting(struct worker *w, bool on)
{
	if (w->closed || w->paused)
		on = false;
	for (size_t i = 0; i < w->srv->naddrs; i++) {
		int err;

		if (w->lfds[i] < 0)
			continue;
		if (!on) {
			tk_loop_unwatch(w->loop, w->lfds[i]);
			continue;
		}
		err = tk_loop_watch(w->loop, w->lfds[i], TK_READABLE, on_accept,
				    w);
		if (err < 0 && err != -EEXIST)
			return err;
	}
	w->accepting = on;
	return 0;
}

static void
on_backoff(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;

	(void)t;
	(void)set_accepting(w, true);
}

/*
 * Out of descriptors or memory: the pending connection stays queued in the
 * kernel and the listener stays readable, so polling it would spin.  Pause
 * accepting instead, and try again shortly.
 */
static void
pause_accepting(struct worker *w)
{
	/* Without a timer to resume, better to spin than to stop for good. */
	if (w->backoff == NULL &&
	    tk_timer_new(w->loop, on_backoff, w, &w->backoff) < 0)
		return;
	if (tk_timer_start(w->backoff, SERVER_ACCEPT_PAUSE_MS, 0) < 0)
		return;
	(void)set_accepting(w, false);
}

static void
link_conn(struct worker *w, struct tk_conn *c)
{
	*tk__conn_next(c) = w->conns;
	*tk__conn_prev(c) = NULL;
	if (w->conns != NULL)
		*tk__conn_prev(w->conns) = c;
	w->conns = c;
}

static void
unlink_conn(struct worker *w, struct tk_conn *c)
{
	struct tk_conn *next = *tk__conn_next(c), *prev = *tk__conn_prev(c);

	if (prev != NULL)
		*tk__conn_next(prev) = next;
	else
		w->conns = next;
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

/*
 * Over max_conns: a line service's client is told in one line, any other
 * is closed at once.  A TLS client is closed too: the line would be
 * plaintext inside its TLS stream, and a handshake to refuse it properly
 * is the work the limit is there to spare.  Established sessions are not
 * touched.
 */
static void
reject(struct worker *w, int fd, const struct tk_addr *peer)
{
	static const char busy[] = TK_SERVER_BUSY_LINE;

	if ((w->srv->svc->flags & TK_SERVICE_TEXT) && w->conn.tls == NULL)
		(void)!send(fd, busy, sizeof(busy) - 1,
			    MSG_DONTWAIT | MSG_NOSIGNAL);
	tk__close(fd);
	tk__ctr_add1(&w->ctr, &w->ctr.rejected, 1);
	emit(w->srv, TK_SERVER_REJECT, NULL, peer, -EUSERS);
}

/*
 * Refused by the access list: closed before a byte is read or sent (a TLS
 * client gets no handshake either), and told nothing, which is what a
 * refused peer should learn.
 */
static void
deny(struct worker *w, int fd, const struct tk_addr *peer)
{
	tk__close(fd);
	tk__ctr_add1(&w->ctr, &w->ctr.denied, 1);
	emit(w->srv, TK_SERVER_REJECT, NULL, peer, TK_EDENIED);
}

/* One more open connection, unless over max_conns (then refused). */
static bool
count_open(struct worker *w, int fd, const struct tk_addr *peer)
{
	struct tk_server *s = w->srv;
	uint64_t open = atomic_fetch_add(&s->open_conns, 1) + 1;

	if (s->opts.max_conns != 0 && open > s->opts.max_conns) {
		atomic_fetch_sub(&s->open_conns, 1);
		reject(w, fd, peer);
		return false;
	}
	return true;
}

/*
 * The connection for an accepted (and counted) socket: 0, or -ENOMEM
 * with the socket closed and accepting paused.  via: the PROXY protocol's
 * sender, when peer is the client it named.
 */
static int
open_conn(struct worker *w, size_t li, int fd, const struct tk_addr *peer,
	  const struct tk_addr *via)
{
	struct tk_server *s = w->srv;
	struct tk_addr *v = via != NULL ? malloc(sizeof(*v)) : NULL;
	struct tk_conn *c = NULL;

	if (v != NULL)
		*v = *via;
	if (via == NULL || v != NULL)
		c = tk__conn_accepted(w->loop, s, &server_owner, w->id, &w->ctr,
				      fd, peer, &w->conn, s->svc, s->svc_arg);
	if (c == NULL) {
		free(v);
		atomic_fetch_sub(&s->open_conns, 1);
		tk__close(fd);
		tk__ctr_add1(&w->ctr, &w->ctr.accept_errors, 1);
		emit(s, TK_SERVER_ERROR, NULL, NULL, -ENOMEM);
		pause_accepting(w);
		return -ENOMEM;
	}
	tk__conn_give_via(c, v);
	link_conn(w, c);
	tk__ctr_begin(&w->ctr);
	tk__ctr_add(&w->ctr.accepted, 1);
	if (li < SERVER_MAX_LISTENERS)
		tk__ctr_add(&w->ctr.accepted_on[li], 1);
	tk__ctr_add(&w->ctr.active, 1);
	tk__ctr_end(&w->ctr);
	emit(s, TK_SERVER_OPEN, c, tk_conn_peer(c), 0);
	tk__conn_start(c);
	/* Its header came in after the drain began: it drains too. */
	if (w->closed && atomic_load(&s->draining))
		tk__conn_stop(c);
	return 0;
}

/* Refused for the PROXY protocol: closed, counted and reported. */
static void
pp_refuse(struct worker *w, int fd, const struct tk_addr *peer, int err)
{
	tk__close(fd);
	tk__ctr_add1(&w->ctr, &w->ctr.pp_refused, 1);
	emit(w->srv, TK_SERVER_REJECT, NULL, peer, err);
}

static void check_drained(struct tk_server *s);

/* The header is in (or not): the connection goes on as the client's. */
static void
pp_done(int fd, const struct tk_addr *sender, const struct tk_addr *via,
	size_t li, int err, void *arg)
{
	struct worker *w = arg;
	struct tk_server *s = w->srv;
	struct tk_addr peer = *sender;

	if (err == 0) {
		unmap_v4(&peer);
		if (w->acl == NULL || tk_acl_check(w->acl, &peer) == 0) {
			if (open_conn(w, li, fd, &peer, via) < 0)
				check_drained(s);
			return;
		}
	}
	atomic_fetch_sub(&s->open_conns, 1);
	if (err == -ECANCELED)
		tk__close(fd); /* the server stops: no more events */
	else if (err == 0)
		deny(w, fd, &peer);
	else
		pp_refuse(w, fd, &peer, err);
	check_drained(s);
}

/*
 * An accepted socket whose PROXY header is to come: its sender must be
 * trusted, then it counts (max_conns) while the header is awaited.  0, or
 * -ENOMEM with accepting paused.
 */
static int
pp_accept(struct worker *w, size_t li, int fd, const struct tk_addr *peer)
{
	struct tk_server *s = w->srv;
	uint64_t ms = s->opts.conn.handshake_timeout_ms;
	int fam = peer->u.sa.sa_family, err;

	/*
	 * The access list passes what it cannot match (a UNIX peer): no CIDR
	 * names such a sender, so it is not a trusted one.
	 */
	if ((fam != AF_INET && fam != AF_INET6) ||
	    tk_acl_check(s->opts.proxy_from, peer) != 0) {
		pp_refuse(w, fd, peer, TK_EPPUNTRUSTED);
		return 0;
	}
	if (!count_open(w, fd, peer))
		return 0;
	err = tk__ppwait_start(w->loop, &w->ppwaits, fd, peer,
			       ms != 0 ? ms : TK_DEFAULT_HANDSHAKE_TIMEOUT_MS,
			       li, pp_done, w);
	if (err == 0)
		return 0;
	atomic_fetch_sub(&s->open_conns, 1);
	tk__close(fd);
	tk__ctr_add1(&w->ctr, &w->ctr.accept_errors, 1);
	emit(s, TK_SERVER_ERROR, NULL, NULL, err);
	pause_accepting(w);
	return err;
}

static void
on_accept(struct tk_loop *loop, int lfd, unsigned events, void *arg)
{
	struct worker *w = arg;
	struct tk_server *s = w->srv;
	size_t li = 0;

	(void)loop;
	(void)events;
	/* Which listener, for its count: a few at most, so a scan. */
	while (li < SERVER_MAX_LISTENERS && w->lfds[li] != lfd)
		li++;
	for (int i = 0; i < SERVER_MAX_ACCEPTS && w->accepting; i++) {
		struct tk_addr peer;
		int fd;

		peer.len = sizeof(peer.u);
		fd = accept4(lfd, &peer.u.sa, &peer.len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int err = -errno;

			if (err == -EAGAIN || err == -EINTR)
				return;
			tk__ctr_add1(&w->ctr, &w->ctr.accept_errors, 1);
			emit(s, TK_SERVER_ERROR, NULL, NULL, err);
			if (err == -EMFILE || err == -ENFILE ||
			    err == -ENOBUFS || err == -ENOMEM) {
				pause_accepting(w);
				return;
			}
			continue; /* ECONNABORTED and kin: the next one */
		}
		unmap_v4(&peer);
		if (s->opts.proxy_protocol) {
			if (pp_accept(w, li, fd, &peer) < 0)
				return;
			continue;
		}
		if (w->acl != NULL && tk_acl_check(w->acl, &peer) != 0) {
			deny(w, fd, &peer);
			continue;
		}
		if (!count_open(w, fd, &peer))
			continue;
		if (open_conn(w, li, fd, &peer, NULL) < 0)
			return;
	}
}

static void
emit_drained(struct tk_loop *loop, void *arg)
{
	struct tk_server *s = arg;

	(void)loop;
	if (!s->freeing)
		emit(s, TK_SERVER_DRAINED, NULL, NULL, 0);
}

/*
 * Drained: every worker has closed its listeners for the drain and no
 * connection is left.  Each side writes its half, then reads the other's
 * (sequentially consistent), so the last of them to finish sees both.
 */
static void
check_drained(struct tk_server *s)
{
	if (atomic_load(&s->drained_workers) < s->nworkers ||
	    atomic_load(&s->open_conns) != 0 ||
	    atomic_exchange(&s->drained_sent, true))
		return;
	/* Posted even from the owner's loop: never inside the caller. */
	(void)tk_loop_post(s->loop, emit_drained, s);
}

/* The owner hooks of every accepted connection (struct tk__conn_owner). */
static void
conn_handshake(struct tk_conn *c)
{
	emit(tk_conn_server(c), TK_SERVER_HANDSHAKE, c, tk_conn_peer(c), 0);
}

static void
conn_gone(struct tk_conn *c, int err)
{
	struct tk_server *s = tk_conn_server(c);
	struct worker *w = &s->workers[tk_conn_worker(c)];

	atomic_fetch_sub(&s->open_conns, 1);
	tk__ctr_begin(&w->ctr);
	tk__ctr_add(&w->ctr.active, (uint64_t)-1); /* wraps: one less */
	tk__ctr_add(&w->ctr.closed, 1);
	if (err != 0) {
		tk__ctr_add(&w->ctr.conn_errors, 1);
		if (err == -ECONNRESET || err == -EPIPE)
			tk__ctr_add(&w->ctr.resets, 1);
		else if (err == TK_EIDLE || err == TK_ELINETIMEOUT ||
			 err == -ETIMEDOUT)
			tk__ctr_add(&w->ctr.timeouts, 1);
		else if (err == TK_ELINETOOLONG)
			tk__ctr_add(&w->ctr.line_errors, 1);
	}
	tk__ctr_end(&w->ctr);
	/* Last: the counters say it is gone before the owner hears. */
	check_drained(s);
}

static void
conn_closed(struct tk_conn *c, int err)
{
	struct tk_server *s = tk_conn_server(c);

	unlink_conn(&s->workers[tk_conn_worker(c)], c);
	emit(s, TK_SERVER_CLOSE, c, tk_conn_peer(c), err);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	(void)tk_loop_run(w->loop);
	return NULL;
}

int
tk_server_start(struct tk_server *s)
{
	sigset_t all, old;
	int err = 0;

	if (s->naddrs == 0)
		return -EDESTADDRREQ;
	if (s->started)
		return -EBUSY;
	for (unsigned i = 0; i < s->nworkers; i++)
		if ((err = set_accepting(&s->workers[i], true)) < 0)
			return err;
	s->started = true;
	if (s->nworkers == 1)
		return 0;
	/* Workers take no signals: the owner's loop handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		err = -pthread_create(&w->thread, NULL, worker_main, w);
		if (err < 0)
			break;
		w->thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err < 0)
		tk_server_stop(s);
	return err;
}

/* Close a worker's listeners (on its own thread). */
static void
close_listeners(struct worker *w)
{
	(void)set_accepting(w, false);
	w->closed = true;
	tk_timer_free(w->backoff);
	w->backoff = NULL;
	for (size_t i = 0; i < SERVER_MAX_LISTENERS; i++) {
		tk__close(w->lfds[i]);
		w->lfds[i] = -1;
	}
}

static void
drain_worker(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;

	(void)loop;
	close_listeners(w);
	/* Stopping unlinks nothing until the deferred closes run. */
	for (struct tk_conn *c = w->conns; c != NULL; c = *tk__conn_next(c))
		tk__conn_stop(c);
	atomic_fetch_add(&w->srv->drained_workers, 1);
	check_drained(w->srv);
}

static void
stop_worker(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;

	close_listeners(w);
	tk__ppwait_cancel_all(&w->ppwaits);
	for (struct tk_conn *c = w->conns; c != NULL; c = *tk__conn_next(c))
		tk_conn_close(c, -ECANCELED);
	/*
	 * On the owner's loop tk_server_stop() may run inside a connection's
	 * callback: its close and free wait for the loop's next deferred run
	 * (or tk_server_free()), never under that callback's feet.
	 */
	if (w->own_loop) {
		tk__loop_run_deferred(loop);
		tk_loop_stop(loop);
	}
}

static void
pause_worker(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;

	(void)loop;
	w->paused = true;
	(void)set_accepting(w, false);
}

int
tk_server_pause(struct tk_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];
		int err;

		if (!w->thread_started)
			pause_worker(w->loop, w);
		else if ((err = tk_loop_post(w->loop, pause_worker, w)) < 0)
			return err;
	}
	return 0;
}

void
tk_server_drain(struct tk_server *s)
{
	/*
	 * Once: a second call would count the workers' drains twice and
	 * report DRAINED while some still accept.  From now on a stop request
	 * has nothing left to stop.
	 */
	if (atomic_exchange(&s->draining, true))
		return;
	atomic_store(&s->stopping, true);
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (w->thread_started)
			(void)tk_loop_post(w->loop, drain_worker, w);
		else
			drain_worker(w->loop, w);
	}
}

void
tk_server_stop(struct tk_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (!w->thread_started) {
			stop_worker(w->loop, w);
			continue;
		}
		/*
		 * XXX: a failed post (out of memory) would leave the thread
		 * running; joining it would then hang.
		 */
		(void)tk_loop_post(w->loop, stop_worker, w);
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (w->thread_started) {
			pthread_join(w->thread, NULL);
			w->thread_started = false;
		}
	}
}

/*
 * On the owner's thread: stop its loop, unless the owner has begun to
 * drain since the request was made; stopping that run would cut the drain.
 */
static void
stop_owner(struct tk_loop *loop, void *arg)
{
	struct tk_server *s = arg;

	if (!atomic_load(&s->draining))
		tk_loop_stop(loop);
}

void
tk_server_request_stop(struct tk_server *s)
{
	/* Idempotent: only the first request does anything. */
	if (atomic_exchange(&s->stopping, true))
		return;
	/*
	 * Not tk_loop_stop() from here: a worker's request may land after
	 * the owner's loop stopped for another reason (a signal) and cut
	 * the next run, the drain.  Posted, it runs where that is known.
	 */
	if (tk_loop_post(s->loop, stop_owner, s) < 0)
		tk_loop_stop(s->loop); /* out of memory: stop at least */
}

bool
tk_server_stopping(const struct tk_server *s)
{
	return atomic_load(&((struct tk_server *)s)->stopping);
}

void
tk__ctr_snapshot(struct tk__counters *c, struct tk__ctr_values *v)
{
	for (unsigned tries = 0;; tries++) {
		unsigned seq =
			atomic_load_explicit(&c->seq, memory_order_acquire);

		if (seq & 1) {
			/* An update is half done: it takes nanoseconds. */
			if (tries > 64)
				sched_yield();
			continue;
		}
		v->accepted = tk__ctr_get(&c->accepted);
		v->rejected = tk__ctr_get(&c->rejected);
		v->active = tk__ctr_get(&c->active);
		v->closed = tk__ctr_get(&c->closed);
		v->bytes_in = tk__ctr_get(&c->bytes_in);
		v->bytes_out = tk__ctr_get(&c->bytes_out);
		v->accept_errors = tk__ctr_get(&c->accept_errors);
		v->conn_errors = tk__ctr_get(&c->conn_errors);
		v->resets = tk__ctr_get(&c->resets);
		v->timeouts = tk__ctr_get(&c->timeouts);
		v->line_errors = tk__ctr_get(&c->line_errors);
		v->denied = tk__ctr_get(&c->denied);
		v->pp_refused = tk__ctr_get(&c->pp_refused);
		v->tls_failures = tk__ctr_get(&c->tls_failures);
		for (size_t i = 0; i < TK__MAX_LISTENERS; i++)
			v->accepted_on[i] = tk__ctr_get(&c->accepted_on[i]);
		v->lat_count = tk__ctr_get(&c->lat_count);
		v->lat_sum_ns = tk__ctr_get(&c->lat_sum_ns);
		for (size_t i = 0; i < TK_LATENCY_BUCKETS; i++)
			v->lat_bucket[i] = tk__ctr_get(&c->lat_bucket[i]);
		/* The reads above happen before the check below. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&c->seq, memory_order_relaxed) == seq)
			return;
	}
}

static void
add_values(struct tk_server_stats *out, const struct tk__ctr_values *v)
{
	out->closed += v->closed;
	out->active += v->active;
	out->accepted += v->accepted;
	out->rejected += v->rejected;
	out->bytes_in += v->bytes_in;
	out->bytes_out += v->bytes_out;
	out->accept_errors += v->accept_errors;
	out->conn_errors += v->conn_errors;
	out->resets += v->resets;
	out->timeouts += v->timeouts;
	out->line_errors += v->line_errors;
	out->denied += v->denied;
	out->pp_refused += v->pp_refused;
	out->tls_failures += v->tls_failures;
}

void
tk_server_get_stats(const struct tk_server *s, struct tk_server_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->workers = s->nworkers;
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct tk__ctr_values v;

		/* Each worker's counts from one moment of its own. */
		tk__ctr_snapshot(&s->workers[i].ctr, &v);
		add_values(out, &v);
	}
}

int
tk_server_get_worker_stats(const struct tk_server *s, unsigned k,
			   struct tk_server_stats *out)
{
	struct tk__ctr_values v;

	memset(out, 0, sizeof(*out));
	if (k >= s->nworkers)
		return -EINVAL;
	tk__ctr_snapshot(&s->workers[k].ctr, &v);
	add_values(out, &v);
	out->workers = 1;
	return 0;
}

uint64_t
tk_server_listener_accepted(const struct tk_server *s, unsigned k, size_t i)
{
	if (k >= s->nworkers || i >= s->naddrs)
		return 0;
	/* One value on its own: no snapshot needed. */
	return tk__ctr_get(&s->workers[k].ctr.accepted_on[i]);
}

int
tk_server_get_latency(const struct tk_server *s, unsigned k,
		      struct tk_server_latency *out)
{
	unsigned first = k, end = k + 1;

	memset(out, 0, sizeof(*out));
	if (k == TK_ALL_WORKERS) {
		first = 0;
		end = s->nworkers;
	} else if (k >= s->nworkers) {
		return -EINVAL;
	}
	for (unsigned w = first; w < end; w++) {
		struct tk__ctr_values v;

		tk__ctr_snapshot(&s->workers[w].ctr, &v);
		out->count += v.lat_count;
		out->sum_ns += v.lat_sum_ns;
		for (size_t i = 0; i < TK_LATENCY_BUCKETS; i++)
			out->buckets[i] += v.lat_bucket[i];
	}
	return 0;
}

struct tk_loop *
tk_server_loop(const struct tk_server *s)
{
	return s->loop;
}

const struct tk_server_opts *
tk_server_get_opts(const struct tk_server *s)
{
	return &s->opts;
}

void
tk_server_free(struct tk_server *s)
{
	if (s == NULL)
		return;
	tk_server_stop(s);
	/*
	 * A stop request may still be queued on the owner's loop, pointing
	 * at s: run it now, as a no-op (the workers are joined: no more).
	 */
	atomic_store(&s->draining, true);
	s->freeing = true;
	tk__loop_run_posts(s->loop);
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		if (w->loop == NULL)
			continue;
		/* Let the closes finish: they still report to s. */
		tk__loop_run_deferred(w->loop);
		if (w->own_loop)
			tk_loop_free(w->loop);
	}
	for (size_t i = 0; i < s->naddrs; i++)
		tk__unix_remove(&s->ufiles[i]);
	tk_tls_ctx_free(s->opts.conn.tls);
	tk__acl_unref(s->opts.acl);
	free(s->workers);
	free(s);
}

/*
 * A change of what new connections get, on its way to every worker.  The
 * server's reference to the old context and list goes when the last
 * worker has taken the new ones: none reads the old any more then
 * (connections hold their own reference to their context).
 */
struct swap {
	bool tls, acl; /* what changes */
	struct tk_tls_ctx *new_tls, *old_tls;
	const struct tk_acl *new_acl, *old_acl;
	atomic_uint pending; /* workers yet to take it */
	struct swap_post {
		struct swap *sw;
		struct worker *w;
	} posts[];
};

static void
swap_done(void *arg)
{
	struct swap_post *p = arg;
	struct swap *sw = p->sw;

	if (atomic_fetch_sub(&sw->pending, 1) != 1)
		return;
	if (sw->tls)
		tk_tls_ctx_free(sw->old_tls);
	if (sw->acl)
		tk__acl_unref(sw->old_acl);
	free(sw);
}

static void
swap_worker(struct tk_loop *loop, void *arg)
{
	struct swap_post *p = arg;

	(void)loop;
	if (p->sw->tls)
		p->w->conn.tls = p->sw->new_tls;
	if (p->sw->acl)
		p->w->acl = p->sw->new_acl;
	swap_done(p);
}

static int
swap(struct tk_server *s, struct swap *sw)
{
	struct tk__post *node[SERVER_MAX_WORKERS];
	unsigned n = 0;

	/* Every node first: a change reaches every worker or none. */
	for (unsigned i = 0; i < s->nworkers; i++) {
		if (!s->workers[i].thread_started)
			continue;
		if ((node[n] = tk__post_new()) == NULL) {
			while (n > 0)
				free(node[--n]);
			free(sw);
			return -ENOMEM;
		}
		n++;
	}
	if (sw->tls) {
		sw->old_tls = s->opts.conn.tls;
		s->opts.conn.tls = tk__tls_ctx_ref(sw->new_tls);
	}
	if (sw->acl) {
		sw->old_acl = s->opts.acl;
		s->opts.acl = tk__acl_ref(sw->new_acl);
	}
	atomic_init(&sw->pending, s->nworkers);
	n = 0;
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct swap_post *p = &sw->posts[i];
		struct worker *w = &s->workers[i];

		p->sw = sw;
		p->w = w;
		/* Not running (one worker, not started, stopped): here. */
		if (!w->thread_started)
			swap_worker(w->loop, p);
		else
			tk__loop_post_ready(w->loop, node[n++], swap_worker,
					    swap_done, p);
	}
	return 0;
}

static struct swap *
swap_new(const struct tk_server *s)
{
	return calloc(1, sizeof(struct swap) +
				 s->nworkers * sizeof(struct swap_post));
}

int
tk_server_set_tls(struct tk_server *s, struct tk_tls_ctx *ctx)
{
	struct swap *sw;

	/* Plain stays plain and TLS stays TLS: clients expect one. */
	if ((ctx == NULL) != (s->opts.conn.tls == NULL))
		return -EINVAL;
	if ((sw = swap_new(s)) == NULL)
		return -ENOMEM;
	sw->tls = true;
	sw->new_tls = ctx;
	return swap(s, sw);
}

int
tk_server_set_acl(struct tk_server *s, const struct tk_acl *acl)
{
	struct swap *sw = swap_new(s);

	if (sw == NULL)
		return -ENOMEM;
	sw->acl = true;
	sw->new_acl = acl;
	return swap(s, sw);
}
