/* relay.c: tk_conn_pipe(): two connections joined, with splice(2) when both
 * are plain sockets, through their buffers otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn_int.h"

/* Splices per event and direction before yielding to other relays. */
#define PUMP_ROUNDS 16

/* One direction: bytes from side `from` to the other. */
struct dir {
	struct tk_pipe *p;
	int from;
	int pipe[2];	/* splice: the kernel pipe, -1 when copying */
	size_t in_pipe; /* bytes in it */
	bool full;	/* the last splice in found no room */
	bool eof;	/* the source's EOF was read */
	bool done;	/* ...and carried: FIN sent (or queued) */
	bool paused;	/* copy: the source paused for backpressure */
	uint64_t bytes; /* written to the destination */
};

struct tk_pipe {
	struct tk_loop *loop;
	struct tk_conn *c[2]; /* each valid until its close has run */
	bool closed[2];
	struct dir d[2]; /* d[0]: a to b, d[1]: b to a */
	struct tk_pipe_opts opts;
	bool spliced;
	enum tk_pipe_side first;
	int err;
	enum tk_pipe_side err_side;
	char *why;
	uint64_t started;
};

void
tk_pipe_opts_init(struct tk_pipe_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->high_water = TK_PIPE_DEFAULT_HIGH_WATER;
	opts->low_water = TK_PIPE_DEFAULT_HIGH_WATER / 4;
}

static int
side_of(const struct tk_pipe *p, const struct tk_conn *c)
{
	return c == p->c[0] ? 0 : 1;
}

/* A side's end (EOF or error): the first one is who closed first. */
static void
note_end(struct tk_pipe *p, int side)
{
	if (p->first == TK_PIPE_NONE)
		p->first = (enum tk_pipe_side)side;
}

static void
note_error(struct tk_pipe *p, int side, int err)
{
	note_end(p, side);
	if (p->err != 0 || err == 0)
		return;
	p->err = err;
	p->err_side = (enum tk_pipe_side)side;
	/* The connection's detail goes with it: keep a copy for done. */
	free(p->why);
	p->why = strdup(tk_conn_last_error(p->c[side]));
}

static void
finish(struct tk_pipe *p)
{
	struct tk_pipe_result r = {
		.a_to_b = p->d[0].bytes,
		.b_to_a = p->d[1].bytes,
		.first = p->first,
		.err = p->err,
		.err_side = p->err != 0 ? p->err_side : TK_PIPE_NONE,
		.spliced = p->spliced,
		.why = p->why != NULL ? p->why : "",
	};
	r.duration_ms = tk_loop_now(p->loop) - p->started;
	if (p->opts.done != NULL)
		p->opts.done(p, &r, p->opts.arg);
	for (int i = 0; i < 2; i++) {
		if (p->d[i].pipe[0] >= 0) {
			tk__close(p->d[i].pipe[0]);
			tk__close(p->d[i].pipe[1]);
		}
	}
	free(p->why);
	free(p);
}

/*
 * A connection is gone (its close callback).  An orderly close with both
 * directions carried leaves the other to finish on its own; anything
 * else cut a stream, and the other side must not see a clean end.
 */
static void
pipe_close(struct tk_conn *c, int err, void *arg)
{
	struct tk_pipe *p = arg;
	int s = side_of(p, c);

	p->closed[s] = true;
	if (err != 0)
		note_error(p, s, err);
	else
		note_end(p, s);
	if (!p->closed[!s] && (err != 0 || !p->d[0].done || !p->d[1].done))
		tk_conn_abort(p->c[!s], err != 0 ? err : -ECONNABORTED);
	if (p->closed[0] && p->closed[1])
		finish(p);
}

/* Server drain: a relay in flight finishes its streams (or the deadline). */
static void
pipe_stop(struct tk_conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

void
tk_pipe_abort(struct tk_pipe *p, int err)
{
	for (int i = 0; i < 2; i++) {
		if (!p->closed[i]) {
			if (p->err == 0) {
				p->err = err;
				p->err_side = TK_PIPE_NONE;
			}
			tk_conn_abort(p->c[i], err);
		}
	}
}

/* Copying: the connections' buffers, their pause and drain. */

/* Side s's EOF: the other side's peer sees the end (once its bytes are out). */
static void
copy_eof(struct tk_pipe *p, int s)
{
	struct dir *d = &p->d[s];

	d->eof = d->done = true;
	note_end(p, s);
	if (p->opts.tap != NULL)
		p->opts.tap(p, (enum tk_pipe_side)s, NULL, 0, p->opts.arg);
	tk_conn_shutdown(p->c[!s]);
}

static void
copy_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct tk_pipe *p = arg;
	int s = side_of(p, c);
	struct dir *d = &p->d[s];
	struct tk_conn *dst = p->c[!s];
	int err;

	if (p->closed[!s])
		return;
	if (n == TK_EOF) {
		copy_eof(p, s);
		return;
	}
	if (p->opts.tap != NULL)
		p->opts.tap(p, (enum tk_pipe_side)s, data, (size_t)n,
			    p->opts.arg);
	/*
	 * A failed write usually closes dst, whose close ends c; not when dst
	 * was already shutting down (-EPIPE): the bytes cannot go, so dst is
	 * reset rather than left to end cleanly after a gap.
	 */
	if ((err = tk_conn_write(dst, data, (size_t)n)) < 0) {
		if (tk_conn_is_open(dst))
			tk_conn_abort(dst, err);
		return;
	}
	d->bytes += (uint64_t)n;
	if (tk_conn_pending(dst) > p->opts.high_water) {
		d->paused = true;
		tk_conn_pause(c);
	}
}

/* c's output fell to low water: the side writing to it reads again. */
static void
copy_drain(struct tk_conn *c, void *arg)
{
	struct tk_pipe *p = arg;
	struct dir *d = &p->d[!side_of(p, c)];

	if (d->paused && !p->closed[d->from]) {
		d->paused = false;
		tk_conn_resume(p->c[d->from]);
	}
}

static const struct tk_service copy_service = {
	.name = "pipe",
	.data = copy_data,
	.drain = copy_drain,
	.close = pipe_close,
	.stop = pipe_stop,
};

/* Splicing: the sockets are the relay's (conn.c's raw mode). */

static const struct tk_service raw_service = {
	.name = "pipe",
	.close = pipe_close,
	.stop = pipe_stop,
};

static void
raw_fail(struct tk_pipe *p, int side, int err)
{
	note_error(p, side, err);
	tk_conn_close(p->c[side], err);
}

/*
 * Move what can move from d's source to its destination: out of the pipe
 * first, then in; a FIN follows the last byte.  False if a side failed.
 */
static bool
pump(struct tk_pipe *p, struct dir *d)
{
	int src = d->from, dst = !d->from;
	size_t cap = p->opts.high_water;

	bool drained = false; /* the socket had less than was asked */

	for (int i = 0; i < PUMP_ROUNDS; i++) {
		bool moved = false;
		ssize_t n;

		if (d->in_pipe > 0) {
			n = splice(d->pipe[0], NULL, tk_conn_fd(p->c[dst]),
				   NULL, d->in_pipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				raw_fail(p, dst, -errno);
				return false;
			}
			if (n > 0) {
				d->in_pipe -= (size_t)n;
				d->bytes += (uint64_t)n;
				d->full = false;
				tk__conn_raw_moved(p->c[dst], 0, (uint64_t)n);
				moved = true;
			}
		}
		if (!d->eof && !d->full && !drained && d->in_pipe < cap) {
			size_t want = cap - d->in_pipe;

			n = splice(tk_conn_fd(p->c[src]), NULL, d->pipe[1],
				   NULL, want,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				raw_fail(p, src, -errno);
				return false;
			}
			if (n < 0 && errno == EAGAIN && d->in_pipe > 0) {
				/*
				 * The pipe's slots are full before its bytes
				 * are (one per socket fragment): read again
				 * once some went out.
				 */
				d->full = true;
			}
			if (n == 0) {
				d->eof = true;
				note_end(p, src);
			}
			if (n > 0) {
				/* Less than asked: spare an EAGAIN read. */
				drained = (size_t)n < want;
				d->in_pipe += (size_t)n;
				tk__conn_raw_moved(p->c[src], (uint64_t)n, 0);
				moved = true;
			}
		}
		if (!moved)
			break;
	}
	if (d->eof && d->in_pipe == 0 && !d->done) {
		int err = tk__conn_raw_shutdown(p->c[dst]);

		d->done = true;
		if (err < 0) {
			raw_fail(p, dst, err);
			return false;
		}
	}
	return true;
}

/* Watch each socket for what its two directions wait on. */
static void
raw_interest(struct tk_pipe *p)
{
	for (int s = 0; s < 2; s++) {
		const struct dir *in = &p->d[s], *out = &p->d[!s];
		unsigned ev = 0;
		int err;

		if (p->closed[s] || !tk_conn_is_open(p->c[s]))
			continue;
		if (!in->eof && !in->full && in->in_pipe < p->opts.high_water)
			ev |= TK_READABLE;
		if (out->in_pipe > 0)
			ev |= TK_WRITABLE;
		if ((err = tk__conn_raw_interest(p->c[s], ev)) < 0)
			note_error(p, s, err);
	}
}

static void
raw_settle(struct tk_pipe *p)
{
	if (p->d[0].done && p->d[1].done) {
		/* Both FINs carried both ways: an orderly end. */
		tk_conn_close(p->c[0], 0);
		tk_conn_close(p->c[1], 0);
		return;
	}
	raw_interest(p);
}

static void
raw_io(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct dir *in = arg;
	struct tk_pipe *p = in->p;
	int s = in->from;

	if ((events & TK_HANGUP) && !(events & (TK_READABLE | TK_WRITABLE))) {
		int err = tk__sock_error(fd);

		if (err != 0) {
			raw_fail(p, s, err);
			return;
		}
		/*
		 * Both FINs are in and nothing is wanted of the socket now;
		 * the hang-up is level-triggered: park it until wanted.
		 */
		tk_loop_unwatch(loop, fd);
		return;
	}
	if ((events & TK_WRITABLE) && !pump(p, &p->d[!s]))
		return;
	if ((events & TK_READABLE) && !pump(p, in))
		return;
	raw_settle(p);
}

static int
open_pipe(struct dir *d, size_t cap)
{
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	/* The pipe's size bounds the bytes in flight (rounded to pages). */
	(void)fcntl(d->pipe[0], F_SETPIPE_SZ, (int)cap);
	return 0;
}

/*
 * splice(2) into a socket cannot say MSG_NOSIGNAL: a peer that reset would
 * raise SIGPIPE.  The library never lets that kill its caller, so the
 * zero-copy path is taken only where SIGPIPE is ignored (as the tcpkit
 * program does); elsewhere bytes are copied, and a write fails with EPIPE.
 */
static bool
sigpipe_ignored(void)
{
	struct sigaction sa;

	return sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

static bool
want_splice(const struct tk_pipe *p)
{
	return p->opts.tap == NULL && !(p->opts.flags & TK_PIPE_COPY) &&
	       tk__conn_raw_ok(p->c[0]) && tk__conn_raw_ok(p->c[1]) &&
	       sigpipe_ignored();
}

int
tk_conn_pipe(struct tk_conn *a, struct tk_conn *b,
	     const struct tk_pipe_opts *opts, struct tk_pipe **out)
{
	struct tk_pipe *p;

	if (a == NULL || b == NULL || a == b ||
	    tk_conn_loop(a) != tk_conn_loop(b))
		return -EINVAL;
	if (!tk_conn_is_open(a) || !tk_conn_is_open(b))
		return -ENOTCONN;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	if (opts != NULL)
		p->opts = *opts;
	else
		tk_pipe_opts_init(&p->opts);
	if (p->opts.high_water == 0)
		p->opts.high_water = TK_PIPE_DEFAULT_HIGH_WATER;
	if (p->opts.low_water == 0 || p->opts.low_water >= p->opts.high_water)
		p->opts.low_water = p->opts.high_water / 4;
	p->loop = tk_conn_loop(a);
	p->c[0] = a;
	p->c[1] = b;
	p->first = p->err_side = TK_PIPE_NONE;
	p->started = tk_loop_now(p->loop);
	for (int i = 0; i < 2; i++) {
		p->d[i].p = p;
		p->d[i].from = i;
		p->d[i].pipe[0] = p->d[i].pipe[1] = -1;
	}
	if (want_splice(p)) {
		p->spliced = open_pipe(&p->d[0], p->opts.high_water) == 0 &&
			     open_pipe(&p->d[1], p->opts.high_water) == 0;
		if (!p->spliced) {
			/* No pipes to be had (descriptors): copy instead. */
			for (int i = 0; i < 2; i++)
				if (p->d[i].pipe[0] >= 0) {
					tk__close(p->d[i].pipe[0]);
					tk__close(p->d[i].pipe[1]);
					p->d[i].pipe[0] = p->d[i].pipe[1] = -1;
				}
		}
	}
	for (int i = 0; i < 2; i++) {
		if (p->spliced) {
			tk__conn_set_service(p->c[i], &raw_service, p, 0);
			tk__conn_raw_begin(p->c[i], raw_io, &p->d[i]);
		} else {
			tk__conn_set_service(p->c[i], &copy_service, p,
					     p->opts.low_water);
			tk__conn_hold_output(p->c[i], p->opts.high_water);
		}
	}
	if (p->spliced) {
		/* Bytes already in either socket raise an event now. */
		raw_interest(p);
	} else {
		/*
		 * A FIN read before the relay began raises no event again:
		 * carry it now.  A close it brings about runs later (deferred),
		 * so p and both connections stay valid here.
		 */
		for (int i = 0; i < 2; i++)
			if (tk__conn_eof_read(p->c[i]))
				copy_eof(p, i);
		tk_conn_resume(a);
		tk_conn_resume(b);
	}
	if (out != NULL)
		*out = p;
	return 0;
}

struct tk_conn *
tk_pipe_conn(const struct tk_pipe *p, enum tk_pipe_side side)
{
	return side == TK_PIPE_B ? p->c[1] : p->c[0];
}

bool
tk_pipe_spliced(const struct tk_pipe *p)
{
	return p->spliced;
}
