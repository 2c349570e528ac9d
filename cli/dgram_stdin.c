/* dgram_stdin.c: stdin cut into UDP datagrams for connect -u and listen -u:
 * the framing, and reading no faster than the socket sends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dgram_stdin.h"

#define DGRAM_STDIN_CHUNK (64u * 1024)
#define DGRAM_MAX_QUEUED  (1024u * 1024) /* stop reading stdin above it */

int
dgram_stdin_init(struct dgram_stdin *ds, size_t datagram_size)
{
	ds->lines = datagram_size == 0;
	ds->max = datagram_size != 0 ? datagram_size : TK_UDP_MAX_PAYLOAD;
	ds->npend = 0;
	ds->pend = malloc(ds->max);
	return ds->pend != NULL ? 0 : -ENOMEM;
}

static int
send_dgram(struct dgram_stdin *ds, const void *p, size_t n)
{
	int err = tk_udp_send(ds->u, ds->to, p, n);

	if (err < 0) {
		ds->send_failed(ds->arg, err);
		return err;
	}
	ds->sent++;
	return 0;
}

/* Cut what came into datagrams: whole lines, or --datagram-size chunks. */
static int
take_input(struct dgram_stdin *ds, const unsigned char *p, size_t n)
{
	while (n > 0 && !*ds->done) {
		size_t room = ds->max - ds->npend;
		size_t take = n < room ? n : room;
		const unsigned char *nl =
			ds->lines ? memchr(p, '\n', take) : NULL;

		if (nl != NULL)
			take = (size_t)(nl - p) + 1;
		memcpy(ds->pend + ds->npend, p, take);
		ds->npend += take;
		p += take;
		n -= take;
		if (nl != NULL || ds->npend == ds->max) {
			if (send_dgram(ds, ds->pend, ds->npend) < 0)
				return -1;
			ds->npend = 0;
		}
	}
	return 0;
}

void
dgram_stdin_stop(struct dgram_stdin *ds)
{
	if (ds->watched) {
		tk_loop_unwatch(ds->loop, STDIN_FILENO);
		ds->watched = false;
	}
}

static void
end_of_input(struct dgram_stdin *ds)
{
	ds->eof = true;
	dgram_stdin_stop(ds);
	/* The last line without its newline is a datagram too. */
	if (ds->npend > 0 && send_dgram(ds, ds->pend, ds->npend) < 0)
		return;
	ds->npend = 0;
	if (ds->at_eof != NULL)
		ds->at_eof(ds->arg);
}

static void
stdin_ready(struct tk_loop *loop, int fd, unsigned ev, void *arg)
{
	struct dgram_stdin *ds = arg;
	unsigned char buf[DGRAM_STDIN_CHUNK];
	ssize_t n;

	(void)loop;
	(void)ev;
	if (*ds->done || ds->eof)
		return;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		dgram_stdin_want(ds);
		return;
	}
	if (n < 0) {
		ds->finish(ds->arg, cli_fail("read", "stdin", -errno));
		return;
	}
	if (n == 0) {
		end_of_input(ds);
		return;
	}
	if (take_input(ds, buf, (size_t)n) < 0)
		return;
	if (tk_udp_pending(ds->u) > DGRAM_MAX_QUEUED) {
		/* The kernel is behind: wait for dgram_stdin_drained(). */
		ds->paused = true;
		dgram_stdin_stop(ds);
		return;
	}
	if (ds->polls)
		dgram_stdin_want(ds);
}

static void
post_stdin(struct tk_loop *loop, void *arg)
{
	stdin_ready(loop, STDIN_FILENO, TK_READABLE, arg);
}

void
dgram_stdin_want(struct dgram_stdin *ds)
{
	int err;

	if (ds->eof || ds->paused || *ds->done)
		return;
	if (ds->polls) {
		if (tk_loop_post(ds->loop, post_stdin, ds) < 0)
			ds->finish(ds->arg, cli_fail("read", "stdin", -ENOMEM));
		return;
	}
	if (ds->watched)
		return;
	err = tk_loop_watch(ds->loop, STDIN_FILENO, TK_READABLE, stdin_ready,
			    ds);
	if (err == -EPERM) {
		/* A regular file: never blocks, so read it in turns. */
		ds->polls = true;
		dgram_stdin_want(ds);
		return;
	}
	if (err < 0) {
		ds->finish(ds->arg, cli_fail("read", "stdin", err));
		return;
	}
	ds->watched = true;
}

void
dgram_stdin_drained(struct dgram_stdin *ds)
{
	if (ds->paused) {
		ds->paused = false;
		dgram_stdin_want(ds);
	}
}

void
dgram_stdin_free(struct dgram_stdin *ds)
{
	dgram_stdin_stop(ds);
	free(ds->pend);
	ds->pend = NULL;
}
