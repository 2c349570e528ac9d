/* scan.c: a TCP connect scan on the event loop, and its port and target list
 * parsers. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static int fail(int code, char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
fail(int code, char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/*
 * The user's text, for a one-line reason: bytes that are not printable
 * ASCII as '?', and at most 64 of them ("..." after).
 */
static const char *
shown(const char *s, size_t n, char *buf, size_t len)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 4 < len; i++) {
		if (i == 64) {
			memcpy(buf + k, "...", 3);
			k += 3;
			break;
		}
		buf[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	}
	buf[k] = '\0';
	return buf;
}

/* --- port lists ---------------------------------------------------------- */

/*
 * A port number of 1-65535 in s[0..n): 1 and *out, 0 for something that is
 * not a number, -1 for a number out of range.  Any count of digits is
 * read without overflow.
 */
static int
port_number(const char *s, size_t n, uint16_t *out)
{
	uint32_t v = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (v <= 65535)
			v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 1;
}

static void
portset_add_range(struct tk_portset *ps, uint32_t lo, uint32_t hi)
{
	uint32_t p = lo;

	/* Whole bytes where it can: an item "-" is 8192 stores, not 65535. */
	while (p <= hi) {
		if ((p & 7) == 0 && p + 7 <= hi) {
			ps->count += 8u - (unsigned)__builtin_popcount(
						  ps->bits[p >> 3]);
			ps->bits[p >> 3] = 0xff;
			p += 8;
			continue;
		}
		if (!(ps->bits[p >> 3] & (1u << (p & 7)))) {
			ps->bits[p >> 3] |= (uint8_t)(1u << (p & 7));
			ps->count++;
		}
		p++;
	}
}

static int
port_item(const char *item, size_t n, struct tk_portset *ps, char *why,
	  size_t whylen)
{
	const char *dash = memchr(item, '-', n);
	uint16_t lo = 1, hi = 65535;
	char show[80];
	int r;

	if (dash == NULL) {
		r = port_number(item, n, &lo);
		if (r == 0)
			return fail(TK_EBADPORT, why, whylen,
				    "'%s' is not a port or a range",
				    shown(item, n, show, sizeof(show)));
		if (r < 0)
			return fail(TK_EBADPORT, why, whylen,
				    "port '%.*s' out of range (1-65535)",
				    (int)n, item);
		portset_add_range(ps, lo, lo);
		return 0;
	}
	/* "-" alone, "-N" and "N-": the missing end is the first or last. */
	if (dash > item) {
		r = port_number(item, (size_t)(dash - item), &lo);
		if (r == 0)
			return fail(TK_EBADPORT, why, whylen,
				    "'%s' is not a port or a range",
				    shown(item, n, show, sizeof(show)));
		if (r < 0)
			return fail(TK_EBADPORT, why, whylen,
				    "port '%.*s' out of range (1-65535)",
				    (int)(dash - item), item);
	}
	if (dash + 1 < item + n) {
		size_t hn = (size_t)(item + n - dash - 1);

		r = port_number(dash + 1, hn, &hi);
		if (r == 0)
			return fail(TK_EBADPORT, why, whylen,
				    "'%s' is not a port or a range",
				    shown(item, n, show, sizeof(show)));
		if (r < 0)
			return fail(TK_EBADPORT, why, whylen,
				    "port '%.*s' out of range (1-65535)",
				    (int)hn, dash + 1);
	}
	if (lo > hi)
		return fail(TK_EBADPORT, why, whylen,
			    "range '%.*s' runs backwards", (int)n, item);
	portset_add_range(ps, lo, hi);
	return 0;
}

int
tk_portset_parse(const char *text, struct tk_portset *out, char *why,
		 size_t whylen)
{
	struct tk_portset *ps;
	const char *p = text;
	char show[80];
	int err = 0;

	if (*text == '\0')
		return fail(TK_EBADPORT, why, whylen, "empty port list");
	/* Built aside, so out is untouched on failure. */
	ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return -ENOMEM;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n == 0) {
			err = fail(
				TK_EBADPORT, why, whylen,
				"empty item in port list '%s'",
				shown(text, strlen(text), show, sizeof(show)));
			break;
		}
		if ((err = port_item(p, n, ps, why, whylen)) < 0)
			break;
		if (end == NULL)
			break;
		p = end + 1;
	}
	if (err == 0)
		*out = *ps;
	free(ps);
	return err;
}

bool
tk_portset_has(const struct tk_portset *ps, uint16_t port)
{
	return port != 0 && (ps->bits[port >> 3] & (1u << (port & 7)));
}

uint16_t
tk_portset_next(const struct tk_portset *ps, uint16_t after)
{
	for (uint32_t p = (uint32_t)after + 1; p <= 65535; p++) {
		/* Whole empty bytes at a time: a sparse set over 1-65535. */
		if ((p & 7) == 0 && ps->bits[p >> 3] == 0) {
			p += 7;
			continue;
		}
		if (ps->bits[p >> 3] & (1u << (p & 7)))
			return (uint16_t)p;
	}
	return 0;
}

/* --- targets ------------------------------------------------------------- */

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static int
target_block(const char *text, const char *slash, uint64_t max_addrs,
	     struct tk_scan_target *out, char *why, size_t whylen)
{
	char ip[INET6_ADDRSTRLEN];
	size_t iplen = (size_t)(slash - text);
	unsigned char raw[16];
	unsigned bits, prefix = 0, host;
	const char *q = slash + 1;
	char show[80];
	int family;

	if (iplen >= sizeof(ip))
		return fail(TK_EBADADDR, why, whylen,
			    "'%s': a CIDR block needs an IP address",
			    shown(text, iplen, show, sizeof(show)));
	memcpy(ip, text, iplen);
	ip[iplen] = '\0';
	if (inet_pton(AF_INET, ip, raw) == 1) {
		family = AF_INET;
		bits = 32;
	} else if (inet_pton(AF_INET6, ip, raw) == 1) {
		family = AF_INET6;
		bits = 128;
	} else {
		return fail(TK_EBADADDR, why, whylen,
			    "'%s': a CIDR block needs an IP address",
			    shown(ip, iplen, show, sizeof(show)));
	}
	if (*q == '\0' || strlen(q) > 3)
		goto bad_prefix;
	for (const char *c = q; *c != '\0'; c++) {
		if (*c < '0' || *c > '9')
			goto bad_prefix;
		prefix = prefix * 10 + (unsigned)(*c - '0');
	}
	if (prefix > bits)
		goto bad_prefix;
	host = bits - prefix;
	if (host >= 64 || (UINT64_C(1) << host) > max_addrs) {
		if (host >= 64)
			return fail(TK_EBADADDR, why, whylen,
				    "block '%s' has 2^%u addresses, more "
				    "than %llu",
				    text, host, (unsigned long long)max_addrs);
		return fail(TK_EBADADDR, why, whylen,
			    "block '%s' has %llu addresses, more than %llu",
			    text, (unsigned long long)(UINT64_C(1) << host),
			    (unsigned long long)max_addrs);
	}
	/* Host bits set (127.0.0.1/30) mean the block that holds them. */
	for (unsigned i = 0; i < bits / 8; i++) {
		unsigned keep = prefix > i * 8 ? prefix - i * 8 : 0;

		if (keep < 8)
			raw[i] &= (unsigned char)(0xff00u >> keep);
	}
	memset(out, 0, sizeof(*out));
	out->prefix = prefix;
	out->count = UINT64_C(1) << host;
	if (family == AF_INET) {
		out->first.u.in4.sin_family = AF_INET;
		memcpy(&out->first.u.in4.sin_addr, raw, 4);
		out->first.len = sizeof(struct sockaddr_in);
	} else {
		out->first.u.in6.sin6_family = AF_INET6;
		memcpy(&out->first.u.in6.sin6_addr, raw, 16);
		out->first.len = sizeof(struct sockaddr_in6);
	}
	return 0;

bad_prefix:
	return fail(TK_EBADADDR, why, whylen,
		    "prefix '/%s' out of range (0-%u)",
		    shown(q, strlen(q) > 8 ? 8 : strlen(q), show, sizeof(show)),
		    bits);
}

int
tk_scan_target_parse(const char *text, uint64_t max_addrs,
		     struct tk_scan_target *out, char *why, size_t whylen)
{
	char host[TK_HOSTLEN];
	size_t n = strlen(text);
	const char *slash;
	struct tk_addr a;
	char show[80];

	if (n == 0)
		return fail(TK_EBADADDR, why, whylen, "empty target");
	if (n >= TK_HOSTLEN)
		return fail(TK_EBADADDR, why, whylen,
			    "target '%s' longer than %d bytes",
			    shown(text, n, show, sizeof(show)), TK_HOSTLEN - 1);
	/* "[::1]" is "::1", as in HOST:PORT. */
	if (text[0] == '[' && text[n - 1] == ']' && n > 2) {
		memcpy(host, text + 1, n - 2);
		host[n - 2] = '\0';
	} else {
		memcpy(host, text, n + 1);
	}
	slash = strchr(host, '/');
	if (slash != NULL)
		return target_block(host, slash, max_addrs, out, why, whylen);
	if (tk_addr_from_ip(host, 0, &a) == 0) {
		memset(out, 0, sizeof(*out));
		out->first = a;
		out->prefix = tk_addr_family(&a) == AF_INET ? 32 : 128;
		out->count = 1;
		return 0;
	}
	for (const char *c = host; *c != '\0'; c++)
		if (!name_char(*c))
			return fail(TK_EBADADDR, why, whylen,
				    "'%s' is not an address or a host name",
				    shown(text, n, show, sizeof(show)));
	if (host[0] == '-' || host[0] == '.')
		return fail(TK_EBADADDR, why, whylen,
			    "'%s' is not an address or a host name",
			    shown(text, n, show, sizeof(show)));
	memset(out, 0, sizeof(*out));
	out->is_name = true;
	memcpy(out->name, host, strlen(host) + 1);
	out->count = 1;
	return 0;
}

void
tk_scan_target_addr(const struct tk_scan_target *t, uint64_t i,
		    struct tk_addr *out)
{
	*out = t->first;
	if (tk_addr_family(out) == AF_INET) {
		uint32_t v = ntohl(out->u.in4.sin_addr.s_addr);

		out->u.in4.sin_addr.s_addr = htonl(v + (uint32_t)i);
	} else {
		unsigned char *b = out->u.in6.sin6_addr.s6_addr;
		unsigned carry = 0;

		for (int k = 15; k >= 0; k--) {
			unsigned v = b[k] + (unsigned)(i & 0xff) + carry;

			b[k] = (unsigned char)v;
			carry = v >> 8;
			i >>= 8;
		}
	}
	tk_addr_set_port(out, 0);
}

/* --- the scan ------------------------------------------------------------ */

/* Connects started in one go before the loop gets a turn. */
#define TK__SCAN_BATCH 1024u

struct probe {
	struct tk_scan *s;
	struct tk_timer timer; /* connect, then banner deadline */
	struct tk_addr addr;
	int fd; /* -1: free */
	size_t target;
	unsigned tries;
	uint64_t t0;
	uint64_t ms;  /* connect time, once open */
	bool reading; /* open, reading a banner */
	size_t blen;
	char *banner; /* banner_max bytes */
	struct probe *next_free;
};

struct work {
	size_t target;
	uint16_t port;
	unsigned tries; /* made so far */
};

struct tk_scan {
	struct tk_loop *loop;
	struct tk_scan_opts o;
	struct tk_addr *addrs;
	size_t naddrs;
	struct tk_portset ports;
	tk_scan_result_cb on_result;
	tk_scan_done_cb on_done;
	void *arg;
	struct probe *probes;
	struct probe *free;
	char *banners;
	/* The next new port: target index and port (0: at the start). */
	size_t cur_target;
	uint16_t cur_port;
	bool exhausted;
	/* Retries wait here; never more than the probes (see pump()). */
	struct work *retry;
	size_t rhead, rlen;
	struct tk_timer pump_timer;
	uint64_t tokens;      /* thousandths of a connect */
	uint64_t refilled_at; /* loop time */
	struct tk_scan_stats st;
	int spare; /* a refused socket, ready to connect again, or -1 */
	int spare_family;
	bool started, finished, pumping;
};

void
tk_scan_opts_init(struct tk_scan_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->inflight = TK_SCAN_DEFAULT_INFLIGHT;
	opts->timeout_ms = TK_SCAN_DEFAULT_TIMEOUT_MS;
}

static void pump(struct tk_scan *s);

static void
report(struct tk_scan *s, struct probe *p, const struct work *w,
       enum tk_scan_state state, int err, uint64_t ms)
{
	struct tk_scan_result r = { 0 };
	struct tk_addr a = s->addrs[w->target];

	tk_addr_set_port(&a, w->port);
	r.addr = &a;
	r.target = w->target;
	r.state = state;
	r.err = err;
	r.tries = w->tries;
	r.ms = ms;
	if (p != NULL && p->reading) {
		const char *nl = memchr(p->banner, '\n', p->blen);
		size_t n = nl != NULL ? (size_t)(nl - p->banner) : p->blen;

		if (nl != NULL && n > 0 && p->banner[n - 1] == '\r')
			n--;
		r.banner = p->banner;
		r.banner_len = n;
	}
	s->st.done++;
	if (state == TK_SCAN_OPEN)
		s->st.open++;
	else if (state == TK_SCAN_CLOSED)
		s->st.closed++;
	else
		s->st.filtered++;
	s->on_result(s, &r, s->arg);
}

/* Close a probe's socket and give its slot back. */
static void
probe_release(struct tk_scan *s, struct probe *p, bool connected)
{
	tk_timer_stop(&p->timer);
	/*
	 * A reset, not a FIN, for a connection that got through: the probe
	 * has nothing left to say, and a FIN would leave this side in
	 * TIME_WAIT for a minute per open port.
	 */
	if (connected)
		(void)setsockopt(
			p->fd, SOL_SOCKET, SO_LINGER,
			&(struct linger){ .l_onoff = 1, .l_linger = 0 },
			sizeof(struct linger));
	tk__loop_forget(s->loop, p->fd);
	tk__close(p->fd);
	p->fd = -1;
	p->reading = false;
	p->blen = 0;
	p->next_free = s->free;
	s->free = p;
	s->st.inflight--;
}

static struct work
probe_work(const struct probe *p)
{
	return (struct work){ .target = p->target,
			      .port = tk_addr_port(&p->addr),
			      .tries = p->tries };
}

static void
probe_finish(struct tk_scan *s, struct probe *p, enum tk_scan_state state,
	     int err)
{
	struct work w = probe_work(p);
	uint64_t ms = p->reading ? p->ms : tk_loop_now(s->loop) - p->t0;

	/* The banner's bytes live in the slot: report before release. */
	report(s, p, &w, state, err, ms);
	probe_release(s, p, state == TK_SCAN_OPEN);
	pump(s);
}

static void
banner_read(struct tk_scan *s, struct probe *p)
{
	for (;;) {
		ssize_t n;

		if (p->blen == s->o.banner_max)
			break;
		n = recv(p->fd, p->banner + p->blen, s->o.banner_max - p->blen,
			 0);
		if (n > 0) {
			bool line = memchr(p->banner + p->blen, '\n',
					   (size_t)n) != NULL;

			p->blen += (size_t)n;
			if (line)
				break;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break; /* end of stream, or a reset: what came is all */
	}
	probe_finish(s, p, TK_SCAN_OPEN, 0);
}

/*
 * Whether a socket that reports no error is connected to someone else: 0,
 * or -ECONNREFUSED when it met itself (a connect to a local port nobody
 * listens on can pick that port as its source, and the SYN is then its
 * own answer: TCP simultaneous open; nothing listens), or the error that
 * says it is not connected at all.
 */
static int
connected_elsewhere(int fd)
{
	struct tk_addr local, peer;
	int err;

	if ((err = tk__sock_peer(fd, &peer)) < 0 ||
	    (err = tk__sock_local(fd, &local)) < 0)
		return err;
	return tk_addr_equal(&local, &peer) ? -ECONNREFUSED : 0;
}

static void
on_io(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct probe *p = arg;
	struct tk_scan *s = p->s;
	int err;

	(void)loop;
	(void)fd;
	(void)events;
	if (p->reading) {
		banner_read(s, p);
		return;
	}
	err = tk__sock_error(p->fd);
	if (err == 0)
		err = connected_elsewhere(p->fd);
	if (err == 0 && s->o.banner_max > 0) {
		p->reading = true;
		p->ms = tk_loop_now(s->loop) - p->t0;
		if (tk_loop_modify(s->loop, p->fd, TK_READABLE) < 0 ||
		    tk_timer_start(&p->timer, s->o.banner_timeout_ms, 0) < 0) {
			probe_finish(s, p, TK_SCAN_OPEN, 0);
			return;
		}
		banner_read(s, p);
		return;
	}
	if (err == 0)
		probe_finish(s, p, TK_SCAN_OPEN, 0);
	else if (err == -ECONNREFUSED || err == -ECONNRESET)
		probe_finish(s, p, TK_SCAN_CLOSED, err);
	else
		probe_finish(s, p, TK_SCAN_FILTERED,
			     err == -ETIMEDOUT ? TK_ECONNTIMEDOUT : err);
}

static bool
retry_push(struct tk_scan *s, struct work w)
{
	if (s->rlen == s->o.inflight)
		return false;
	s->retry[(s->rhead + s->rlen) % s->o.inflight] = w;
	s->rlen++;
	return true;
}

static void
on_timer(struct tk_timer *t, void *arg)
{
	struct probe *p = arg;
	struct tk_scan *s = p->s;
	struct work w;

	(void)t;
	if (p->reading) {
		probe_finish(s, p, TK_SCAN_OPEN, 0);
		return;
	}
	w = probe_work(p);
	if (w.tries <= s->o.retries) {
		probe_release(s, p, false);
		/* A slot was just freed, so the queue has room (pump()). */
		if (!retry_push(s, w))
			report(s, NULL, &w, TK_SCAN_FILTERED, TK_ECONNTIMEDOUT,
			       tk_loop_now(s->loop) - p->t0);
	} else {
		report(s, p, &w, TK_SCAN_FILTERED, TK_ECONNTIMEDOUT,
		       tk_loop_now(s->loop) - p->t0);
		probe_release(s, p, false);
	}
	pump(s);
}

/* A failure of our own, not an answer about the port. */
static bool
local_error(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS ||
	       err == -ENOMEM || err == -EADDRNOTAVAIL || err == -EAGAIN;
}

/* The next piece of work, without taking it; false when there is none. */
static bool
peek_work(struct tk_scan *s, struct work *w)
{
	if (s->rlen > 0) {
		*w = s->retry[s->rhead];
		return true;
	}
	while (!s->exhausted) {
		uint16_t next = tk_portset_next(&s->ports, s->cur_port);

		if (next != 0) {
			*w = (struct work){ .target = s->cur_target,
					    .port = next };
			return true;
		}
		if (s->cur_target + 1 >= s->naddrs) {
			s->exhausted = true;
			break;
		}
		s->cur_target++;
		s->cur_port = 0;
	}
	return false;
}

static void
take_work(struct tk_scan *s, const struct work *w)
{
	if (s->rlen > 0) {
		s->rhead = (s->rhead + 1) % s->o.inflight;
		s->rlen--;
	} else {
		s->cur_port = w->port;
	}
}

/* One token of the rate limit, or false with the ms to wait in *wait. */
static bool
take_token(struct tk_scan *s, uint64_t *wait)
{
	uint64_t now = tk_loop_now(s->loop);
	/* A burst of a tenth of a second's worth, at least one connect. */
	uint64_t cap = s->o.rate >= 10 ? s->o.rate * 100 : 1000;

	if (s->o.rate == 0)
		return true;
	if (now > s->refilled_at) {
		uint64_t add = (now - s->refilled_at) * s->o.rate;

		s->tokens = s->tokens + add > cap ? cap : s->tokens + add;
		s->refilled_at = now;
	}
	if (s->tokens >= 1000) {
		s->tokens -= 1000;
		return true;
	}
	*wait = (1000 - s->tokens + s->o.rate - 1) / s->o.rate;
	if (*wait == 0)
		*wait = 1;
	return false;
}

static void
finish_scan(struct tk_scan *s, int err)
{
	s->finished = true;
	tk__close(s->spare);
	s->spare = -1;
	tk_timer_stop(&s->pump_timer);
	s->on_done(s, err, s->arg);
}

/*
 * Open a socket and start its connect: fd, or -errno (a refusal known at
 * once among them).  On loopback the peer's answer to the SYN is handled
 * before connect() returns, so a second connect() tells at once what the
 * first came to: -ECONNREFUSED (and the socket is free to connect again),
 * -EALREADY (still in progress: watch it), 0 or -EISCONN (connected).  A
 * refused socket is kept for the next probe: a closed port then costs two
 * connect() calls, not a socket(), a connect(), a wait and a close().
 */
static int
probe_connect(struct tk_scan *s, const struct tk_addr *a)
{
	int fd = -1, err;

	if (s->spare >= 0 && s->spare_family == tk_addr_family(a)) {
		fd = s->spare;
		s->spare = -1;
		if (connect(fd, &a->u.sa, a->len) < 0 && errno != EINPROGRESS) {
			/* Not in the state we took it for. */
			tk__close(fd);
			fd = -1;
		}
	}
	if (fd < 0 && (fd = tk__sock_connect(a, NULL)) < 0)
		return fd;
	if (!tk_addr_is_loopback(a) || connect(fd, &a->u.sa, a->len) == 0)
		return fd;
	err = -errno;
	if (err == -EALREADY || err == -EISCONN || err == -EINPROGRESS)
		return fd;
	if (err == -ECONNREFUSED && s->spare < 0) {
		s->spare = fd;
		s->spare_family = tk_addr_family(a);
	} else {
		tk__close(fd);
	}
	return err;
}

/* Start one probe for w in a free slot: 1 started, 0 answered at once
 * (reported), or a local error (-errno) with nothing taken. */
static int
probe_start(struct tk_scan *s, const struct work *w)
{
	struct probe *p = s->free;
	struct work done = *w;
	int fd, err;

	p->addr = s->addrs[w->target];
	tk_addr_set_port(&p->addr, w->port);
	fd = probe_connect(s, &p->addr);
	if (fd >= 0) {
		err = tk__loop_watch_own(s->loop, fd, TK_WRITABLE, on_io, p);
		if (err < 0) {
			tk__close(fd);
			return err;
		}
	} else if (local_error(fd)) {
		return fd;
	}
	take_work(s, w);
	s->st.connects++;
	done.tries++;
	if (fd < 0) {
		/* Refused or unreachable before connect() returned. */
		report(s, NULL, &done,
		       fd == -ECONNREFUSED ? TK_SCAN_CLOSED : TK_SCAN_FILTERED,
		       fd, 0);
		return 0;
	}
	s->free = p->next_free;
	p->fd = fd;
	p->target = w->target;
	p->tries = done.tries;
	p->t0 = tk_loop_now(s->loop);
	s->st.inflight++;
	if ((err = tk_timer_start(&p->timer, s->o.timeout_ms, 0)) < 0) {
		/* Without its deadline the probe could wait for ever. */
		report(s, NULL, &done, TK_SCAN_FILTERED, err, 0);
		probe_release(s, p, false);
	}
	return 1;
}

/*
 * Start what may start.  Retries go first, and one is queued only when its
 * slot is freed, so queued retries never outnumber free slots: the queue
 * (one entry per slot) cannot overflow.
 */
#define PUMP_LATER 2

/*
 * Go on from the pump timer in ms: PUMP_LATER, or -ENOMEM when it cannot
 * be armed (then, with nothing in flight, the scan ends with it).
 */
static int
pump_later(struct tk_scan *s, uint64_t ms)
{
	if (tk_timer_is_active(&s->pump_timer) ||
	    tk_timer_start(&s->pump_timer, ms, 0) == 0)
		return PUMP_LATER;
	return -ENOMEM;
}

static void
pump(struct tk_scan *s)
{
	struct work w;
	uint64_t wait;
	unsigned starts = 0;
	bool took;
	int r;

	if (s->pumping || s->finished)
		return;
	s->pumping = true;
	while (s->free != NULL && peek_work(s, &w)) {
		/*
		 * On loopback most answers come within connect(), and the
		 * loop could run here for a whole scan: give the loop back
		 * now and then (timers, a progress line, other work).
		 */
		took = false;
		if (++starts > TK__SCAN_BATCH) {
			r = pump_later(s, 0);
		} else if (!take_token(s, &wait)) {
			r = pump_later(s, wait);
		} else {
			took = true;
			r = probe_start(s, &w);
		}
		if (r == PUMP_LATER)
			break;
		if (r < 0) {
			if (took && s->o.rate != 0)
				s->tokens += 1000;
			if (s->st.inflight == 0) {
				s->pumping = false;
				finish_scan(s, r);
				return;
			}
			/* Out of sockets or ports: go on as probes end. */
			break;
		}
	}
	s->pumping = false;
	if (s->st.inflight == 0 && s->rlen == 0 && !peek_work(s, &w) &&
	    s->started)
		finish_scan(s, 0);
}

static void
on_pump_timer(struct tk_timer *t, void *arg)
{
	(void)t;
	pump(arg);
}

int
tk_scan_new(struct tk_loop *loop, const struct tk_scan_opts *opts,
	    const struct tk_addr *addrs, size_t naddrs,
	    const struct tk_portset *ports, tk_scan_result_cb on_result,
	    tk_scan_done_cb on_done, void *arg, struct tk_scan **out)
{
	struct tk_scan *s;
	struct tk_scan_opts o;

	*out = NULL;
	if (opts != NULL)
		o = *opts;
	else
		tk_scan_opts_init(&o);
	if (o.inflight == 0)
		o.inflight = TK_SCAN_DEFAULT_INFLIGHT;
	if (o.timeout_ms == 0)
		o.timeout_ms = TK_SCAN_DEFAULT_TIMEOUT_MS;
	if (o.banner_timeout_ms == 0)
		o.banner_timeout_ms = o.timeout_ms;
	if (naddrs == 0 || ports->count == 0 ||
	    o.inflight > TK_SCAN_MAX_INFLIGHT || on_result == NULL ||
	    on_done == NULL)
		return -EINVAL;
	if (o.rate > UINT64_MAX / 100000)
		o.rate = UINT64_MAX / 100000;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->addrs = malloc(naddrs * sizeof(*addrs));
	s->probes = calloc(o.inflight, sizeof(*s->probes));
	s->retry = calloc(o.inflight, sizeof(*s->retry));
	if (o.banner_max > 0 && o.banner_max <= SIZE_MAX / o.inflight)
		s->banners = malloc(o.banner_max * o.inflight);
	if (s->addrs == NULL || s->probes == NULL || s->retry == NULL ||
	    (o.banner_max > 0 && s->banners == NULL)) {
		free(s->addrs);
		free(s->probes);
		free(s->retry);
		free(s->banners);
		free(s);
		return -ENOMEM;
	}
	memcpy(s->addrs, addrs, naddrs * sizeof(*addrs));
	s->loop = loop;
	s->o = o;
	s->naddrs = naddrs;
	s->ports = *ports;
	s->on_result = on_result;
	s->on_done = on_done;
	s->arg = arg;
	for (size_t i = o.inflight; i-- > 0;) {
		struct probe *p = &s->probes[i];

		p->s = s;
		p->fd = -1;
		p->banner = s->banners ? s->banners + i * o.banner_max : NULL;
		tk__timer_init(&p->timer, loop, on_timer, p);
		p->next_free = s->free;
		s->free = p;
	}
	tk__timer_init(&s->pump_timer, loop, on_pump_timer, s);
	s->spare = -1;
	s->st.total = (uint64_t)ports->count * naddrs;
	/* A full bucket at the start: the first connects go at once. */
	s->tokens = o.rate >= 10 ? o.rate * 100 : 1000;
	*out = s;
	return 0;
}

int
tk_scan_start(struct tk_scan *s)
{
	int err;

	if (s->started)
		return -EALREADY;
	/* From the loop, so no callback runs inside this call. */
	if ((err = tk_timer_start(&s->pump_timer, 0, 0)) < 0)
		return err;
	s->started = true;
	s->refilled_at = tk_loop_now(s->loop);
	return 0;
}

void
tk_scan_get_stats(const struct tk_scan *s, struct tk_scan_stats *out)
{
	*out = s->st;
}

void
tk_scan_free(struct tk_scan *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->o.inflight; i++) {
		struct probe *p = &s->probes[i];

		if (p->fd >= 0)
			probe_release(s, p, p->reading);
	}
	tk_timer_stop(&s->pump_timer);
	tk__close(s->spare);
	free(s->addrs);
	free(s->probes);
	free(s->retry);
	free(s->banners);
	free(s);
}
