/* listen_udp.c: `tcpkit listen -u`: datagrams received to stdout, stdin as
 * datagrams to the last sender (nc -u -l). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "listen.h"

#define LUDP_MAX_SOCKS	 2 /* the default: 127.0.0.1 and ::1 */
#define LUDP_STDIN_CHUNK (64u * 1024)
#define LUDP_MAX_QUEUED	 (1024u * 1024) /* stop reading stdin above it */

struct lsession {
	const struct listen_opts *o;
	struct tk_loop *loop;
	struct tk_udp *u[LUDP_MAX_SOCKS];
	size_t nu;
	struct tk_udp *last_u; /* the socket the last datagram came to */
	struct tk_addr last;   /* ...and its sender: where stdin goes */
	bool have_peer;
	unsigned char *pend; /* a line not yet ended, or a partial chunk */
	size_t npend;
	size_t dgram_max; /* --datagram-size, or a whole line's limit */
	bool stdin_watched, stdin_polls, stdin_eof, paused;
	uint64_t sent, received;
	int exit_code;
	bool done;
};

static void
finish(struct lsession *s, int code)
{
	if (s->done)
		return;
	s->done = true;
	s->exit_code = code;
	tk_loop_stop(s->loop);
}

static void stdin_want(struct lsession *s);

static int
send_dgram(struct lsession *s, const void *p, size_t n)
{
	char to[TK_ADDRSTRLEN];
	int err = tk_udp_send(s->last_u, &s->last, p, n);

	if (err < 0) {
		tk_addr_format(&s->last, to, sizeof(to));
		finish(s, cli_fail("listen", to, err));
		return err;
	}
	s->sent++;
	return 0;
}

/* Cut what came into datagrams: whole lines, or --datagram-size chunks. */
static int
take_input(struct lsession *s, const unsigned char *p, size_t n)
{
	bool lines = s->o->datagram_size == 0;

	while (n > 0 && !s->done) {
		size_t room = s->dgram_max - s->npend;
		size_t take = n < room ? n : room;
		const unsigned char *nl = lines ? memchr(p, '\n', take) : NULL;

		if (nl != NULL)
			take = (size_t)(nl - p) + 1;
		memcpy(s->pend + s->npend, p, take);
		s->npend += take;
		p += take;
		n -= take;
		if (nl != NULL || s->npend == s->dgram_max) {
			if (send_dgram(s, s->pend, s->npend) < 0)
				return -1;
			s->npend = 0;
		}
	}
	return 0;
}

static void stdin_ready(struct tk_loop *loop, int fd, unsigned ev, void *arg);

static void
post_stdin(struct tk_loop *loop, void *arg)
{
	stdin_ready(loop, STDIN_FILENO, TK_READABLE, arg);
}

static void
stdin_stop(struct lsession *s)
{
	if (s->stdin_watched) {
		tk_loop_unwatch(s->loop, STDIN_FILENO);
		s->stdin_watched = false;
	}
}

/* stdin is read only once there is someone to send it to. */
static void
stdin_want(struct lsession *s)
{
	int err;

	if (s->o->recv_only || !s->have_peer || s->stdin_eof || s->paused ||
	    s->done)
		return;
	if (s->stdin_polls) {
		if (tk_loop_post(s->loop, post_stdin, s) < 0)
			finish(s, cli_fail("read", "stdin", -ENOMEM));
		return;
	}
	if (s->stdin_watched)
		return;
	err = tk_loop_watch(s->loop, STDIN_FILENO, TK_READABLE, stdin_ready, s);
	if (err == -EPERM) {
		/* A regular file: never blocks, so read it in turns. */
		s->stdin_polls = true;
		stdin_want(s);
		return;
	}
	if (err < 0) {
		finish(s, cli_fail("read", "stdin", err));
		return;
	}
	s->stdin_watched = true;
}

static void
stdin_ready(struct tk_loop *loop, int fd, unsigned ev, void *arg)
{
	struct lsession *s = arg;
	unsigned char buf[LUDP_STDIN_CHUNK];
	ssize_t n;

	(void)loop;
	(void)ev;
	if (s->done || s->stdin_eof)
		return;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		stdin_want(s);
		return;
	}
	if (n < 0) {
		finish(s, cli_fail("read", "stdin", -errno));
		return;
	}
	if (n == 0) {
		/* UDP has no end to send: keep receiving until a signal.
		 * The last line without its newline is a datagram too. */
		s->stdin_eof = true;
		stdin_stop(s);
		if (s->npend > 0 && send_dgram(s, s->pend, s->npend) == 0)
			s->npend = 0;
		return;
	}
	if (take_input(s, buf, (size_t)n) < 0)
		return;
	if (tk_udp_pending(s->last_u) > LUDP_MAX_QUEUED) {
		/* The kernel is behind: wait for on_drained. */
		s->paused = true;
		stdin_stop(s);
		return;
	}
	if (s->stdin_polls)
		stdin_want(s);
}

static void
on_drained(struct tk_udp *u, void *arg)
{
	struct lsession *s = arg;

	(void)u;
	if (s->paused) {
		s->paused = false;
		stdin_want(s);
	}
}

static void
on_recv(struct tk_udp *u, const struct tk_udp_dgram *d, int err, void *arg)
{
	struct lsession *s = arg;
	char from[TK_ADDRSTRLEN];
	int werr;

	if (s->done)
		return;
	if (err != 0) {
		/* An unconnected socket: an ICMP error says nothing of us. */
		if (s->o->verbose)
			cli_error("warning", "listen", "%s", tk_strerror(err));
		return;
	}
	tk_addr_format(d->peer, from, sizeof(from));
	if (d->truncated)
		cli_error("warning", from,
			  "datagram of %zu bytes truncated to %zu", d->full_len,
			  d->len);
	s->received++;
	if (s->o->verbose)
		fprintf(stderr, "received %zu byte%s from udp://%s\n", d->len,
			CLI_PLURAL(d->len), from);
	/* nc -u -l answers the first sender only; we follow the last. */
	s->last = *d->peer;
	s->last_u = u;
	if (!s->have_peer) {
		s->have_peer = true;
		stdin_want(s);
	}
	if ((werr = cli_write_all(STDOUT_FILENO, d->data, d->len)) < 0) {
		if (werr == -EPIPE)
			finish(s, 0);
		else
			finish(s, cli_fail("write", "stdout", werr));
	}
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	finish(arg, 0);
}

/* Where to bind: HOST's addresses, every one (:PORT), or loopback. */
static int
udp_addrs(const struct listen_opts *o, struct tk_addr *out, size_t *n)
{
	struct tk_addrlist *list = NULL;
	const char *host = o->host;
	char port[8];
	int err;

	*n = 0;
	snprintf(port, sizeof(port), "%u", (unsigned)o->port);
	if (host[0] == '\0' && o->wildcard) {
		host = o->family == AF_INET ? "0.0.0.0" : "::";
	} else if (host[0] == '\0') {
		if (o->family != AF_INET6 &&
		    tk_addr_from_ip("127.0.0.1", o->port, &out[(*n)]) == 0)
			(*n)++;
		if (o->family != AF_INET &&
		    tk_addr_from_ip("::1", o->port, &out[(*n)]) == 0)
			(*n)++;
		return 0;
	}
	err = tk_resolve(host, port, o->family, TK_RESOLVE_PASSIVE, &list);
	if (err < 0)
		return cli_fail("listen", host, err);
	/* One socket: replies leave from the address the client used. */
	out[(*n)++] = list->addrs[0];
	tk_addrlist_free(list);
	return 0;
}

static int
open_socks(struct lsession *s)
{
	static const struct tk_udp_cb cb = { .recv = on_recv,
					     .drained = on_drained };
	struct tk_addr addrs[LUDP_MAX_SOCKS];
	char where[TK_ADDRSTRLEN];
	size_t n;
	int err;

	if ((err = udp_addrs(s->o, addrs, &n)) != 0)
		return err;
	for (size_t i = 0; i < n; i++) {
		struct tk_udp_opts uo = { .bind = &addrs[i] };

		if (i > 0 && s->nu > 0) {
			/* The same port for both, the one the first got. */
			struct tk_addr first;

			if (tk_udp_local(s->u[0], &first) == 0)
				tk_addr_set_port(&addrs[i],
						 tk_addr_port(&first));
		}
		err = tk_udp_open(s->loop, &uo, &cb, s, &s->u[s->nu]);
		if (err < 0 && i > 0 && s->o->host[0] == '\0' &&
		    (err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT))
			continue; /* no IPv6 here: 127.0.0.1 alone */
		if (err < 0)
			return cli_fail(
				"listen",
				tk_addr_format(&addrs[i], where, sizeof(where)),
				err);
		s->nu++;
	}
	for (size_t i = 0; i < s->nu; i++) {
		struct tk_addr a;

		if ((err = tk_udp_local(s->u[i], &a)) < 0)
			return cli_fail("listen", "", err);
		tk_addr_format(&a, where, sizeof(where));
		cli_log("listening", "addr", where, "listening on udp://%s",
			where);
	}
	return 0;
}

int
listen_udp_run(const struct listen_opts *o)
{
	struct lsession s = { .o = o };
	int rc;

	s.dgram_max = o->datagram_size != 0 ? (size_t)o->datagram_size
					    : TK_UDP_MAX_PAYLOAD;
	s.pend = malloc(s.dgram_max);
	if (s.pend == NULL)
		return cli_fail("listen", "", -ENOMEM);
	if ((rc = tk_loop_new(&s.loop)) < 0) {
		free(s.pend);
		return cli_fail("listen", "", rc);
	}
	if ((rc = tk_loop_signal(s.loop, SIGINT, on_signal, &s)) < 0 ||
	    (rc = tk_loop_signal(s.loop, SIGTERM, on_signal, &s)) < 0) {
		rc = cli_fail("listen", "signals", rc);
		goto out;
	}
	if ((rc = open_socks(&s)) != 0)
		goto out;
	if ((rc = tk_loop_run(s.loop)) < 0) {
		rc = cli_fail("listen", "event loop", rc);
		goto out;
	}
	rc = s.exit_code;
	if (o->verbose)
		fprintf(stderr, "%llu datagram%s received, %llu sent\n",
			(unsigned long long)s.received, CLI_PLURAL(s.received),
			(unsigned long long)s.sent);
out:
	stdin_stop(&s);
	for (size_t i = 0; i < s.nu; i++)
		tk_udp_close(s.u[i]);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	tk_loop_free(s.loop);
	free(s.pend);
	return rc;
}
