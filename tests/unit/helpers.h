/* helpers.h: shared pieces of the loop/conn/server/service unit tests. */
#ifndef TK_TEST_HELPERS_H
#define TK_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tcpkit.h"

/*
 * Everything here is static inline so that a test file pays no
 * unused-function warning for the helpers it does not use.
 */

/* With AddressSanitizer, freed memory is poisoned: a free can be checked. */
#if defined(__SANITIZE_ADDRESS__)
#define T_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_HAVE_ASAN 1
#endif
#endif
#ifdef T_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#define T_ASSERT_FREED(p)                                                      \
	cr_assert(__asan_address_is_poisoned((const void *)(p)),               \
		  "%s was not freed", #p)
#else
#define T_ASSERT_FREED(p) ((void)(p))
#endif

static inline uint64_t
t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The constructors, for tests that do not test how they fail. */
static inline struct tk_loop *
t_loop_new(void)
{
	struct tk_loop *loop;

	cr_assert_eq(tk_loop_new(&loop), 0);
	return loop;
}

static inline struct tk_timer *
t_timer_new(struct tk_loop *loop, tk_timer_cb cb, void *arg)
{
	struct tk_timer *t;

	cr_assert_eq(tk_timer_new(loop, cb, arg, &t), 0);
	return t;
}

static inline struct tk_server *
t_server_new(struct tk_loop *loop, const struct tk_server_opts *o,
	     const struct tk_service *svc, void *arg)
{
	struct tk_server *s;

	cr_assert_eq(tk_server_new(loop, o, svc, arg, &s), 0);
	return s;
}

/*
 * Run the loop until cond holds; fail after ms milliseconds.  Waiting is
 * the loop's own (epoll with a timeout), never a sleep.
 */
#define RUN_UNTIL(loop, ms, cond)                                              \
	do {                                                                   \
		uint64_t run_until_end_ = t_now_ms() + (ms);                   \
		while (!(cond)) {                                              \
			uint64_t run_until_now_ = t_now_ms();                  \
			cr_assert(run_until_now_ < run_until_end_,             \
				  "timed out after %d ms waiting for %s",      \
				  (int)(ms), #cond);                           \
			cr_assert_eq(tk_loop_run_once((loop),                  \
						      (int)(run_until_end_ -   \
							    run_until_now_)),  \
				     0);                                       \
		}                                                              \
	} while (0)

/* Run the loop for ms milliseconds: to see that something does not happen. */
static inline void
t_run_for(struct tk_loop *loop, uint64_t ms)
{
	uint64_t end = t_now_ms() + ms, now;

	while ((now = t_now_ms()) < end)
		cr_assert_eq(tk_loop_run_once(loop, (int)(end - now)), 0);
}

/*
 * A bound on tk_loop_run(): after ms the loop is stopped and the guard
 * remembers it, so a test fails with a message instead of hanging.
 */
struct t_guard {
	struct tk_loop *loop;
	struct tk_timer *timer;
	bool fired;
};

static inline void
t_guard_fire(struct tk_timer *t, void *arg)
{
	struct t_guard *g = arg;

	(void)t;
	g->fired = true;
	tk_loop_stop(g->loop);
}

static inline void
t_guard_start(struct t_guard *g, struct tk_loop *loop, uint64_t ms)
{
	g->loop = loop;
	g->fired = false;
	cr_assert_eq(tk_timer_new(loop, t_guard_fire, g, &g->timer), 0);
	tk_loop_update_time(loop);
	cr_assert_eq(tk_timer_start(g->timer, ms, 0), 0);
}

/* tk_loop_run() returned: it must have been for its own reason. */
static inline void
t_guard_end(struct t_guard *g)
{
	cr_assert(!g->fired, "tk_loop_run() did not return by itself");
	tk_timer_free(g->timer);
	g->timer = NULL;
}

static inline struct tk_addr
t_addr(const char *ip, uint16_t port)
{
	struct tk_addr a;

	cr_assert_eq(tk_addr_from_ip(ip, port, &a), 0, "bad test address %s",
		     ip);
	return a;
}

static inline const char *
t_fmt(const struct tk_addr *a, char buf[TK_ADDRSTRLEN])
{
	return tk_addr_format(a, buf, TK_ADDRSTRLEN);
}

/* A list over n addresses (tk_conn_connect() copies them). */
static inline struct tk_addrlist
t_list(struct tk_addr *a, size_t n)
{
	struct tk_addrlist l = { .count = n, .addrs = a };

	return l;
}

static inline void
t_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	cr_assert(fl >= 0);
	cr_assert(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* An int socket option's value (getsockopt must succeed). */
static inline int
t_sockopt(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	cr_assert_eq(getsockopt(fd, level, opt, &v, &len), 0);
	return v;
}

/*
 * A plain listening socket outside the library, bound to ip port 0; the
 * bound address goes to *bound.  Blocking, so accept() waits.
 */
static inline int
t_raw_listen(const char *ip, int backlog, struct tk_addr *bound)
{
	struct tk_addr a = t_addr(ip, 0);
	int fd = socket(a.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	cr_assert(bind(fd, &a.u.sa, a.len) == 0, "bind: %s", strerror(errno));
	cr_assert(listen(fd, backlog) == 0, "listen: %s", strerror(errno));
	bound->len = sizeof(bound->u);
	cr_assert(getsockname(fd, &bound->u.sa, &bound->len) == 0);
	return fd;
}

/*
 * A port nobody listens on, held for the whole test: a socket bound to it
 * but not listening answers SYNs with RST, so connecting is refused, and
 * no other process can take the port meanwhile.  Returns the socket.
 */
static inline int
t_refusing_port(const char *ip, struct tk_addr *bound)
{
	struct tk_addr a = t_addr(ip, 0);
	int fd = socket(a.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert(bind(fd, &a.u.sa, a.len) == 0, "bind: %s", strerror(errno));
	bound->len = sizeof(bound->u);
	cr_assert(getsockname(fd, &bound->u.sa, &bound->len) == 0);
	return fd;
}

/* A server for svc listening on ip port 0, started; its address in *addr. */
static inline struct tk_server *
t_server(struct tk_loop *loop, const char *ip, const struct tk_server_opts *o,
	 const struct tk_service *svc, void *arg, struct tk_addr *addr)
{
	struct tk_server *s = t_server_new(loop, o, svc, arg);
	struct tk_addr a = t_addr(ip, 0);

	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	cr_assert_eq(tk_server_start(s), 0);
	*addr = *tk_server_addr(s, 0);
	cr_assert_neq(tk_addr_port(addr), 0);
	return s;
}

/* TLS contexts, for tests that do not test how building one fails. */
static inline struct tk_tls_ctx *
t_tls_server(const struct tk_tls_server_opts *o)
{
	struct tk_tls_ctx *ctx = NULL;
	char why[TK_TLS_ERRLEN] = "";

	cr_assert_eq(tk_tls_ctx_new_server(o, &ctx, why, sizeof(why)), 0, "%s",
		     why);
	return ctx;
}

static inline struct tk_tls_ctx *
t_tls_client(const struct tk_tls_client_opts *o)
{
	struct tk_tls_ctx *ctx = NULL;
	char why[TK_TLS_ERRLEN] = "";

	cr_assert_eq(tk_tls_ctx_new_client(o, &ctx, why, sizeof(why)), 0, "%s",
		     why);
	return ctx;
}

/*
 * A raw peer: a plain socket driven by the same loop, outside the library's
 * connection code.  It collects what it reads (until EOF), sends what it is
 * given as the socket accepts it, and can half-close after its output, stop
 * reading, or reset.
 */
struct peer {
	struct tk_loop *loop;
	int fd;
	bool watched;
	unsigned events;
	bool read_on; /* reading enabled */
	bool eof;     /* the other side's FIN was read */
	int err;      /* -errno of a failed recv/send */
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_off, out_len, out_cap;
	bool shut_want, shut_done;
};

static inline void
peer_update(struct peer *p)
{
	unsigned ev = 0;

	if (!p->watched)
		return;
	if (p->read_on && !p->eof && p->err == 0)
		ev |= TK_READABLE;
	if (p->out_off < p->out_len && p->err == 0)
		ev |= TK_WRITABLE;
	if (ev != p->events) {
		cr_assert_eq(tk_loop_modify(p->loop, p->fd, ev), 0);
		p->events = ev;
	}
}

static inline void
peer_read(struct peer *p)
{
	for (;;) {
		ssize_t n;

		if (p->in_cap - p->in_len < 65536) {
			p->in_cap = p->in_cap ? p->in_cap * 2 : 131072;
			p->in = realloc(p->in, p->in_cap);
			cr_assert_not_null(p->in);
		}
		n = recv(p->fd, p->in + p->in_len, p->in_cap - p->in_len, 0);
		if (n > 0) {
			p->in_len += (size_t)n;
			continue;
		}
		if (n == 0)
			p->eof = true;
		else if (errno == EINTR)
			continue;
		else if (errno != EAGAIN)
			p->err = -errno;
		return;
	}
}

static inline void
peer_flush(struct peer *p)
{
	while (p->out_off < p->out_len && p->err == 0) {
		ssize_t n = send(p->fd, p->out + p->out_off,
				 p->out_len - p->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			p->err = -errno;
			break;
		}
		p->out_off += (size_t)n;
	}
	if (p->out_off == p->out_len) {
		p->out_off = p->out_len = 0;
		if (p->shut_want && !p->shut_done && p->err == 0) {
			cr_assert(shutdown(p->fd, SHUT_WR) == 0);
			p->shut_done = true;
		}
	}
	peer_update(p);
}

static inline void
peer_on_io(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct peer *p = arg;

	(void)loop;
	(void)fd;
	if (events & TK_WRITABLE)
		peer_flush(p);
	if (events & TK_READABLE)
		peer_read(p);
	if ((events & TK_HANGUP) && !(events & (TK_READABLE | TK_WRITABLE))) {
		/* Dead and nothing asked for: stop polling it (no spin). */
		tk_loop_unwatch(p->loop, p->fd);
		p->watched = false;
		return;
	}
	peer_update(p);
}

static inline void
peer_adopt(struct peer *p, struct tk_loop *loop, int fd)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->fd = fd;
	p->read_on = true;
	t_nonblock(fd);
	cr_assert_eq(tk_loop_watch(loop, fd, TK_READABLE, peer_on_io, p), 0);
	p->watched = true;
	p->events = TK_READABLE;
}

/* Connect (blocking: loopback completes it in the kernel) and adopt. */
static inline void
peer_connect(struct peer *p, struct tk_loop *loop, const struct tk_addr *a)
{
	int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	cr_assert(connect(fd, &a->u.sa, a->len) == 0, "connect: %s",
		  strerror(errno));
	peer_adopt(p, loop, fd);
}

/* Accept one connection from a raw listener and adopt it. */
static inline void
peer_accept(struct peer *p, struct tk_loop *loop, int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	cr_assert(fd >= 0, "accept: %s", strerror(errno));
	peer_adopt(p, loop, fd);
}

static inline void
peer_send(struct peer *p, const void *data, size_t len)
{
	if (p->out_len + len > p->out_cap) {
		while (p->out_len + len > p->out_cap)
			p->out_cap = p->out_cap ? p->out_cap * 2 : 4096;
		p->out = realloc(p->out, p->out_cap);
		cr_assert_not_null(p->out);
	}
	memcpy(p->out + p->out_len, data, len);
	p->out_len += len;
	peer_flush(p);
}

static inline void
peer_send_str(struct peer *p, const char *s)
{
	peer_send(p, s, strlen(s));
}

/* Half-close once everything given so far is sent. */
static inline void
peer_shutdown(struct peer *p)
{
	p->shut_want = true;
	peer_flush(p);
}

static inline void
peer_set_reading(struct peer *p, bool on)
{
	p->read_on = on;
	peer_update(p);
}

/* Bytes still waiting in the peer's own output buffer. */
static inline size_t
peer_pending(const struct peer *p)
{
	return p->out_len - p->out_off;
}

static inline void
peer_free(struct peer *p)
{
	if (p->watched)
		tk_loop_unwatch(p->loop, p->fd);
	p->watched = false;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	free(p->in);
	free(p->out);
	p->in = p->out = NULL;
}

/* Close with SO_LINGER 0: the other side gets a RST. */
static inline void
peer_reset(struct peer *p)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	cr_assert(setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) ==
		  0);
	peer_free(p);
}

/* Does what the peer read equal s (exactly)? */
static inline bool
peer_got(const struct peer *p, const char *s)
{
	size_t n = strlen(s);

	return p->in_len == n && (n == 0 || memcmp(p->in, s, n) == 0);
}

/* A deterministic byte pattern: byte i of a stream seeded with seed. */
static inline unsigned char
t_pattern(size_t i, unsigned seed)
{
	uint32_t x = (uint32_t)i * 2654435761u + seed;

	x ^= x >> 13;
	return (unsigned char)(x * 0x5bd1e995u >> 24);
}

static inline void
t_fill(char *p, size_t n, size_t start, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)t_pattern(start + i, seed);
}

/* Index of the first byte of p[0..n) that is not the pattern, or n. */
static inline size_t
t_check(const char *p, size_t n, size_t start, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] != t_pattern(start + i, seed))
			return i;
	return n;
}

#endif /* TK_TEST_HELPERS_H */
