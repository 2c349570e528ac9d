/* client_udp.c: `tcpkit connect -u`: stdin as datagrams (a line, or a
 * --datagram-size chunk, each), every reply datagram to stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "dgram_stdin.h"

/* After the end of input, how long to wait for more replies. */
#define UDP_LINGER_MS 1000u

struct usession {
	const struct client_opts *o;
	struct tk_loop *loop;
	struct tk_udp *u;
	struct tk_timer *linger;   /* after the end of input */
	struct tk_timer *deadline; /* --max-time */
	char where[TK_ADDRSTRLEN + 8];
	struct dgram_stdin in; /* stdin, as datagrams */
	uint64_t received;
	int exit_code;
	bool done;
};

static void
finish(struct usession *s, int code)
{
	if (s->done)
		return;
	s->done = true;
	s->exit_code = code;
	tk_loop_stop(s->loop);
}

static void
report(struct usession *s, int err)
{
	if (err == -ECONNREFUSED) {
		cli_error(s->o->cmd, s->where,
			  "%s: nothing listens on this UDP port (ICMP port "
			  "unreachable)",
			  tk_strerror(err));
		finish(s, CLI_EXIT_UNAVAILABLE);
		return;
	}
	finish(s, cli_fail(s->o->cmd, s->where, err));
}

/* Done when input has ended and every datagram has its reply. */
static void
maybe_done(struct usession *s)
{
	if (s->in.eof && tk_udp_pending(s->u) == 0 && s->received >= s->in.sent)
		finish(s, 0);
}

static void
on_recv(struct tk_udp *u, const struct tk_udp_dgram *d, int err, void *arg)
{
	struct usession *s = arg;
	int werr;

	(void)u;
	if (s->done)
		return;
	if (err != 0) {
		report(s, err);
		return;
	}
	if (d->truncated)
		cli_error("warning", s->where,
			  "datagram of %zu bytes truncated to %zu", d->full_len,
			  d->len);
	s->received++;
	if (s->o->verbose) {
		char from[TK_ADDRSTRLEN];

		fprintf(stderr, "received %zu byte%s from udp://%s\n", d->len,
			CLI_PLURAL(d->len),
			tk_addr_format(d->peer, from, sizeof(from)));
	}
	if ((werr = cli_write_all(STDOUT_FILENO, d->data, d->len)) < 0) {
		if (werr == -EPIPE)
			finish(s, 0);
		else
			finish(s, cli_fail("write", "stdout", werr));
		return;
	}
	if (s->in.eof && s->linger != NULL)
		(void)tk_timer_start(s->linger,
				     s->o->idle_timeout_ms != 0
					     ? s->o->idle_timeout_ms
					     : UDP_LINGER_MS,
				     0);
	maybe_done(s);
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
	report(arg, err);
}

static void
end_of_input(void *arg)
{
	struct usession *s = arg;

	if (tk_timer_start(s->linger,
			   s->o->idle_timeout_ms != 0 ? s->o->idle_timeout_ms
						      : UDP_LINGER_MS,
			   0) < 0) {
		finish(s, cli_fail(s->o->cmd, "", -ENOMEM));
		return;
	}
	maybe_done(s);
}

static void
on_drained(struct tk_udp *u, void *arg)
{
	struct usession *s = arg;

	(void)u;
	dgram_stdin_drained(&s->in);
	maybe_done(s);
}

static void
on_linger(struct tk_timer *t, void *arg)
{
	struct usession *s = arg;

	(void)t;
	/* UDP has no end: the replies that were coming have come. */
	finish(s, 0);
}

static void
on_deadline(struct tk_timer *t, void *arg)
{
	struct usession *s = arg;

	(void)t;
	cli_error(s->o->cmd, s->where, "--max-time reached");
	finish(s, CLI_EXIT_TIMEOUT);
}

int
client_udp_run(const struct client_opts *o)
{
	static const struct tk_udp_cb cb = { .recv = on_recv,
					     .drained = on_drained };
	struct usession s = { .o = o };
	struct tk_udp_opts uo = { 0 };
	struct tk_addrlist *list = NULL;
	const char *h = o->host;
	int err;

	snprintf(s.where, sizeof(s.where),
		 strchr(h, ':') != NULL ? "udp://[%s]:%s" : "udp://%s:%s", h,
		 o->port);
	err = tk_resolve(h, o->port, o->family, 0, &list);
	if (err == TK_EBADPORT)
		return cli_usage(o->cmd, "unknown port '%s'", o->port);
	if (err < 0)
		return cli_fail(o->cmd, s.where, err);
	/* No handshake to race: the first address is the one. */
	uo.peer = &list->addrs[0];
	uo.bind = o->has_source ? &o->source : NULL;
	if ((err = dgram_stdin_init(&s.in, o->datagram_size)) < 0 ||
	    (err = tk_loop_new(&s.loop)) < 0) {
		tk_addrlist_free(list);
		dgram_stdin_free(&s.in);
		return cli_fail(o->cmd, "", err);
	}
	s.in.loop = s.loop;
	s.in.done = &s.done;
	s.in.finish = stdin_finish;
	s.in.send_failed = stdin_send_failed;
	s.in.at_eof = end_of_input;
	s.in.arg = &s;
	err = tk_udp_open(s.loop, &uo, &cb, &s, &s.u);
	s.in.u = s.u;
	if (err == 0)
		err = tk_timer_new(s.loop, on_linger, &s, &s.linger);
	if (err == 0 && o->max_time_ms != 0) {
		err = tk_timer_new(s.loop, on_deadline, &s, &s.deadline);
		if (err == 0)
			err = tk_timer_start(s.deadline, o->max_time_ms, 0);
	}
	if (err < 0) {
		s.exit_code = cli_fail(o->cmd, s.where, err);
		goto out;
	}
	if (o->verbose) {
		char a[TK_ADDRSTRLEN];

		fprintf(stderr, "sending to udp://%s\n",
			tk_addr_format(&list->addrs[0], a, sizeof(a)));
	}
	dgram_stdin_want(&s.in);
	if ((err = tk_loop_run(s.loop)) < 0)
		s.exit_code = cli_fail(o->cmd, "event loop", err);
	if (o->verbose)
		fprintf(stderr, "%llu datagram%s sent, %llu received\n",
			(unsigned long long)s.in.sent, CLI_PLURAL(s.in.sent),
			(unsigned long long)s.received);
out:
	dgram_stdin_stop(&s.in);
	tk_udp_close(s.u);
	tk_timer_free(s.linger);
	tk_timer_free(s.deadline);
	tk_loop_free(s.loop);
	tk_addrlist_free(list);
	dgram_stdin_free(&s.in);
	return s.exit_code;
}
