/* client_udp.c: `tcpkit connect -u`: stdin as datagrams (a line, or a
 * --datagram-size chunk, each), every reply datagram to stdout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"

/* After the end of input, how long to wait for more replies. */
#define UDP_LINGER_MS	1000u
#define UDP_STDIN_CHUNK (64u * 1024)
#define UDP_MAX_QUEUED	(1024u * 1024) /* stop reading stdin above it */
#define UDP_MAX_LINEBUF TK_UDP_MAX_PAYLOAD

struct usession {
	const struct client_opts *o;
	struct tk_loop *loop;
	struct tk_udp *u;
	struct tk_timer *linger;   /* after the end of input */
	struct tk_timer *deadline; /* --max-time */
	char where[TK_ADDRSTRLEN + 8];
	unsigned char *pend; /* a line not yet ended, or a partial chunk */
	size_t npend;
	bool stdin_watched, stdin_polls, stdin_eof, paused;
	uint64_t sent, received;
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
	if (s->stdin_eof && tk_udp_pending(s->u) == 0 && s->received >= s->sent)
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
	if (s->stdin_eof && s->linger != NULL)
		(void)tk_timer_start(s->linger,
				     s->o->idle_timeout_ms != 0
					     ? s->o->idle_timeout_ms
					     : UDP_LINGER_MS,
				     0);
	maybe_done(s);
}

static int
send_dgram(struct usession *s, const void *p, size_t n)
{
	int err = tk_udp_send(s->u, NULL, p, n);

	if (err < 0) {
		report(s, err);
		return err;
	}
	s->sent++;
	return 0;
}

/* Cut what came into datagrams: whole lines, or --datagram-size chunks. */
static int
take_input(struct usession *s, const unsigned char *p, size_t n)
{
	size_t size = s->o->datagram_size;

	while (n > 0 && !s->done) {
		size_t room = (size != 0 ? size : UDP_MAX_LINEBUF) - s->npend;
		size_t take = n < room ? n : room;
		const unsigned char *nl =
			size == 0 ? memchr(p, '\n', take) : NULL;
		bool full;

		if (nl != NULL)
			take = (size_t)(nl - p) + 1;
		memcpy(s->pend + s->npend, p, take);
		s->npend += take;
		p += take;
		n -= take;
		full = nl != NULL ||
		       s->npend == (size != 0 ? size : UDP_MAX_LINEBUF);
		if (full) {
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
stdin_stop(struct usession *s)
{
	if (s->stdin_watched) {
		tk_loop_unwatch(s->loop, STDIN_FILENO);
		s->stdin_watched = false;
	}
}

static void
stdin_want(struct usession *s)
{
	int err;

	if (s->stdin_eof || s->paused || s->done)
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
end_of_input(struct usession *s)
{
	s->stdin_eof = true;
	stdin_stop(s);
	/* The last line without its newline is a datagram too. */
	if (s->npend > 0 && send_dgram(s, s->pend, s->npend) < 0)
		return;
	s->npend = 0;
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
stdin_ready(struct tk_loop *loop, int fd, unsigned ev, void *arg)
{
	struct usession *s = arg;
	unsigned char buf[UDP_STDIN_CHUNK];
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
		end_of_input(s);
		return;
	}
	if (take_input(s, buf, (size_t)n) < 0)
		return;
	if (tk_udp_pending(s->u) > UDP_MAX_QUEUED) {
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
	struct usession *s = arg;

	(void)u;
	if (s->paused) {
		s->paused = false;
		stdin_want(s);
	}
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
	s.pend = malloc(o->datagram_size != 0 ? o->datagram_size
					      : UDP_MAX_LINEBUF);
	if (s.pend == NULL || (err = tk_loop_new(&s.loop)) < 0) {
		err = s.pend == NULL ? -ENOMEM : err;
		tk_addrlist_free(list);
		free(s.pend);
		return cli_fail(o->cmd, "", err);
	}
	err = tk_udp_open(s.loop, &uo, &cb, &s, &s.u);
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
	stdin_want(&s);
	if ((err = tk_loop_run(s.loop)) < 0)
		s.exit_code = cli_fail(o->cmd, "event loop", err);
	if (o->verbose)
		fprintf(stderr, "%llu datagram%s sent, %llu received\n",
			(unsigned long long)s.sent, CLI_PLURAL(s.sent),
			(unsigned long long)s.received);
out:
	stdin_stop(&s);
	tk_udp_close(s.u);
	tk_timer_free(s.linger);
	tk_timer_free(s.deadline);
	tk_loop_free(s.loop);
	tk_addrlist_free(list);
	free(s.pend);
	return s.exit_code;
}
