/* listen_udp.c: `tcpkit listen -u`: datagrams received to stdout, stdin as
 * datagrams to the last sender (nc -u -l). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dgram_stdin.h"
#include "listen.h"

#define LUDP_MAX_SOCKS 2 /* the default: 127.0.0.1 and ::1 */

struct lsession {
	const struct listen_opts *o;
	struct tk_loop *loop;
	struct tk_udp *u[LUDP_MAX_SOCKS];
	size_t nu;
	struct tk_addr last; /* the last sender: where stdin goes */
	bool have_peer;
	struct dgram_stdin in; /* stdin, as datagrams to the last sender */
	uint64_t received;
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

/* dgram_stdin's callbacks. */
static void
stdin_finish(void *arg, int code)
{
	finish(arg, code);
}

static void
stdin_send_failed(void *arg, int err)
{
	struct lsession *s = arg;
	char to[TK_ADDRSTRLEN];

	tk_addr_format(&s->last, to, sizeof(to));
	finish(s, cli_fail("listen", to, err));
}

static void
on_drained(struct tk_udp *u, void *arg)
{
	struct lsession *s = arg;

	(void)u;
	dgram_stdin_drained(&s->in);
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
	s->in.u = u; /* replies leave from where the datagram came */
	/* stdin is read only once there is someone to send it to. */
	if (!s->have_peer) {
		s->have_peer = true;
		if (!s->o->recv_only)
			dgram_stdin_want(&s->in);
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

	if ((rc = dgram_stdin_init(&s.in, o->datagram_size)) < 0 ||
	    (rc = tk_loop_new(&s.loop)) < 0) {
		dgram_stdin_free(&s.in);
		return cli_fail("listen", "", rc);
	}
	s.in.loop = s.loop;
	s.in.to = &s.last;
	s.in.done = &s.done;
	s.in.finish = stdin_finish;
	s.in.send_failed = stdin_send_failed;
	s.in.arg = &s;
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
			(unsigned long long)s.in.sent);
out:
	dgram_stdin_stop(&s.in);
	for (size_t i = 0; i < s.nu; i++)
		tk_udp_close(s.u[i]);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	tk_loop_free(s.loop);
	dgram_stdin_free(&s.in);
	return rc;
}
