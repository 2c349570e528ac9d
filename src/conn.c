/* conn.c: a connection's life: handshake, open, half-closed, ending,
 * closed (the connect phase before it is in connect.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn_int.h"

/* Reads per readable event before yielding to other connections. */
#define CONN_MAX_READS 16

/* What a TK_SERVICE_TEXT peer is told of a line too long. */
#define TOO_LONG_LINE "error: line too long\n"

static ssize_t
plain_read(struct tk_conn *c, void *buf, size_t len)
{
	ssize_t n = recv(c->fd, buf, len, 0);

	return n < 0 ? -errno : n;
}

static ssize_t
plain_write(struct tk_conn *c, const void *buf, size_t len)
{
	/* MSG_NOSIGNAL: a peer that went away is EPIPE, never SIGPIPE. */
	ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

	return n < 0 ? -errno : n;
}

static int
plain_shutdown(struct tk_conn *c)
{
	return shutdown(c->fd, SHUT_WR) < 0 ? -errno : 0;
}

const struct tk__transport tk__plain_tcp = {
	.read = plain_read,
	.write = plain_write,
	.shutdown = plain_shutdown,
	.close = NULL,
};

void *
tk__conn_tp_state(const struct tk_conn *c)
{
	return c->tp_state;
}

const struct tk__transport *
tk__conn_transport(const struct tk_conn *c)
{
	return c->tp;
}

void
tk__conn_set_transport(struct tk_conn *c, const struct tk__transport *tp,
		       void *state)
{
	c->tp = tp != NULL ? tp : &tk__plain_tcp;
	c->tp_state = state;
}

void
tk__conn_set_detail(struct tk_conn *c, const char *text)
{
	free(c->errmsg);
	c->errmsg = strdup(text);
}

void
tk_conn_opts_init(struct tk_conn_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->connect_timeout_ms = TK_DEFAULT_CONNECT_TIMEOUT_MS;
	opts->linger_ms = TK_DEFAULT_LINGER_MS;
	opts->max_pending = TK_DEFAULT_MAX_PENDING;
	opts->max_output = TK_DEFAULT_MAX_OUTPUT;
	opts->no_delay = true;
}

static void on_io(struct tk_loop *loop, int fd, unsigned events, void *arg);
static void handshake_step(struct tk_conn *c);
static void proxy_step(struct tk_conn *c);
static void on_timer(struct tk_timer *t, void *arg);
static void finish_close(struct tk__defer *d);
static void read_buffered(struct tk__defer *d);

struct tk_conn *
tk__conn_new(struct tk_loop *loop, const struct tk_conn_opts *opts,
	     const struct tk_service *svc, void *arg)
{
	struct tk_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->svc = svc;
	c->arg = arg;
	c->tp = &tk__plain_tcp;
	c->fd = -1;
	tk__timer_init(&c->timer, loop, on_timer, c);
	if (opts != NULL)
		c->opts = *opts;
	else
		tk_conn_opts_init(&c->opts);
	c->opts.source = NULL;	   /* a client keeps its own copy in cx */
	c->opts.servername = NULL; /* the TLS session has its copy */
	c->opts.proxy = NULL;	   /* a client's copy is c->px */
	if (c->opts.handshake_timeout_ms == 0)
		c->opts.handshake_timeout_ms = TK_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	if (c->opts.max_pending == 0)
		c->opts.max_pending = TK_DEFAULT_MAX_PENDING;
	if (c->opts.max_output == 0)
		c->opts.max_output = TK_DEFAULT_MAX_OUTPUT;
	if (c->opts.max_output < c->opts.max_pending)
		c->opts.max_output = c->opts.max_pending;
	if (c->opts.connect_timeout_ms == 0)
		c->opts.connect_timeout_ms = TK_DEFAULT_CONNECT_TIMEOUT_MS;
	if (c->opts.max_line == 0)
		c->opts.max_line = TK_DEFAULT_MAX_LINE;
	tk_buf_init(&c->out, c->opts.max_output);
	c->defer.cb = finish_close;
	c->read_defer.cb = read_buffered;
	tk__loop_add_conn(loop, &c->node);
	if (svc != NULL && (svc->flags & TK_SERVICE_LINE_FRAMING))
		tk_conn_reserve_output(c, c->opts.max_line + 2 +
						  sizeof(TOO_LONG_LINE));
	return c;
}

struct tk_conn *
tk__conn_of_node(struct tk__lnode *n)
{
	return (struct tk_conn *)((char *)n - offsetof(struct tk_conn, node));
}

static bool
wants_read(const struct tk_conn *c)
{
	if (c->flags & F_EOF)
		return false;
	if (c->flags & F_ENDING)
		return true; /* to see the peer's FIN */
	return !(c->flags & (F_PAUSED | F_BACKPRESSURE));
}

static void
update_interest(struct tk_conn *c)
{
	unsigned ev = 0;
	int err;

	if (c->state != ST_OPEN || (c->flags & F_RAW))
		return;
	if (wants_read(c))
		ev |= TK_READABLE;
	/*
	 * Output to write, or a FIN whose transport met a full socket (TLS
	 * close_notify): both wait for writable.
	 */
	if (tk_buf_len(&c->out) > 0 ||
	    (c->flags & (F_SHUT_WANT | F_SHUT_DONE)) == F_SHUT_WANT)
		ev |= TK_WRITABLE;
	if (c->tp->want != NULL)
		ev |= c->tp->want(c);
	/*
	 * Bytes the transport holds already will raise no epoll event: read
	 * them after this round (a reader paused mid-record, now resumed).
	 */
	if ((ev & TK_READABLE) && c->tp->pending != NULL &&
	    c->tp->pending(c) > 0)
		tk__loop_defer(c->loop, &c->read_defer);
	/* An fd parked by on_io() is watched again once there is interest. */
	err = tk_loop_modify(c->loop, c->fd, ev);
	if (err == -ENOENT)
		err = ev != 0 ? tk__loop_watch_own(c->loop, c->fd, ev, on_io, c)
			      : 0;
	/* Unwatched output would wait for the idle timeout: close now. */
	if (err < 0)
		tk_conn_close(c, err);
}

void
tk__conn_set_error(struct tk_conn *c, const struct tk_addr *a, int err)
{
	char where[TK_ADDRSTRLEN];

	free(c->errmsg);
	c->errmsg = NULL;
	if (a != NULL) {
		tk_addr_format(a, where, sizeof(where));
		if (asprintf(&c->errmsg, "%s: %s", where, tk_strerror(err)) < 0)
			c->errmsg = NULL;
	} else {
		c->errmsg = strdup(tk_strerror(err));
	}
}

/* Ended and FIN sent: only the linger deadline applies now. */
static bool
lingering(const struct tk_conn *c)
{
	return (c->flags & (F_ENDING | F_SHUT_DONE)) ==
	       (F_ENDING | F_SHUT_DONE);
}

/* Arm the timer for the earliest thing the connection waits on now. */
static void
arm_timer(struct tk_conn *c)
{
	uint64_t now = tk_loop_now(c->loop), idle = c->opts.idle_timeout_ms;
	uint64_t due = UINT64_MAX;

	if (idle != 0 && !lingering(c))
		due = c->last_active + idle;
	if (c->deadline != 0 && c->deadline < due)
		due = c->deadline;
	if (due == UINT64_MAX) {
		tk_timer_stop(&c->timer);
		return;
	}
	/* A deadline that cannot be kept must not be lost: close. */
	if (tk_timer_start(&c->timer, due > now ? due - now : 0, 0) < 0)
		tk_conn_close(c, -ENOMEM);
}

/*
 * Response latency (tcpkit/metrics.h): the clock starts at the first read
 * nothing has answered yet and stops at the next write to the kernel.
 */
static void
note_read(struct tk_conn *c)
{
	if (c->ctr != NULL && c->unanswered_ns == 0)
		c->unanswered_ns = tk__mono_ns();
}

static void
note_written(struct tk_conn *c)
{
	if (c->unanswered_ns != 0) {
		tk__ctr_latency(c->ctr, tk__mono_ns() - c->unanswered_ns);
		c->unanswered_ns = 0;
	}
}

void
tk_conn_close(struct tk_conn *c, int err)
{
	if (c == NULL || c->state == ST_CLOSED)
		return;
	/* A TLS client that never got through (a stop's cancel aside). */
	if (c->state == ST_HANDSHAKE && c->ctr != NULL && err != -ECANCELED)
		tk__ctr_add1(c->ctr, &c->ctr->tls_failures, 1);
	c->state = ST_CLOSED;
	c->close_err = err;
	tk__lnode_del(&c->node);
	if (err != 0 && c->errmsg == NULL)
		tk__conn_set_error(c, c->opened_at != 0 ? &c->peer : NULL, err);
	tk__connect_done(c);
	tk__proxy_free(c->px);
	c->px = NULL;
	tk_timer_stop(&c->timer);
	if (c->owner != NULL)
		c->owner->gone(c, err);
	if (c->fd >= 0) {
		tk__loop_forget(c->loop, c->fd); /* close() leaves epoll too */
		tk__close(c->fd);
		c->fd = -1;
	}
	tk_buf_free(&c->out);
	/* The close callback and the free wait until no callback of c runs. */
	tk__loop_defer(c->loop, &c->defer);
}

void
tk_conn_abort(struct tk_conn *c, int err)
{
	/* SO_LINGER 0: close() sends RST, whatever the kernel still holds. */
	if (c != NULL && c->fd >= 0 && c->state != ST_CLOSED)
		(void)setsockopt(
			c->fd, SOL_SOCKET, SO_LINGER,
			&(struct linger){ .l_onoff = 1, .l_linger = 0 },
			sizeof(struct linger));
	tk_conn_close(c, err);
}

int
tk_conn_detach(struct tk_conn *c, int *fd)
{
	/*
	 * Only a plain socket with nothing in flight can change hands: a TLS
	 * session's state, unsent output or held lines would be lost with
	 * the connection.
	 */
	if (c->state != ST_OPEN || c->fd < 0)
		return -ENOTCONN;
	if (c->tp != &tk__plain_tcp)
		return -EINVAL;
	if (tk_buf_len(&c->out) != 0 ||
	    (c->lines != NULL && tk_buf_len(c->lines) != 0))
		return -EBUSY;
	/*
	 * A real unwatch, not tk__loop_forget(): the open file outlives our
	 * close in the new owner's hands, and epoll would keep reporting it.
	 */
	tk_loop_unwatch(c->loop, c->fd);
	*fd = c->fd;
	c->fd = -1;
	tk_conn_close(c, 0);
	return 0;
}

static void
finish_close(struct tk__defer *d)
{
	struct tk_conn *c =
		(struct tk_conn *)((char *)d - offsetof(struct tk_conn, defer));

	if (c->svc != NULL && c->svc->close != NULL)
		c->svc->close(c, c->close_err, c->arg);
	if (c->owner != NULL)
		c->owner->closed(c, c->close_err);
	if (c->tp->close != NULL)
		c->tp->close(c);
	if (c->lines != NULL) {
		tk_buf_free(c->lines);
		free(c->lines);
	}
	free(c->errmsg);
	free(c->local);
	free(c->via);
	free(c);
}

/* Both directions are done once our FIN is sent and the peer's is read. */
static bool framing(const struct tk_conn *c);

static void
maybe_finish(struct tk_conn *c)
{
	/* Lines held by a pause, and the EOF behind them, are owed first. */
	if (framing(c) && !(c->flags & (F_ENDING | F_EOF_TOLD)))
		return;
	if (c->state == ST_OPEN && (c->flags & F_EOF) &&
	    (c->flags & F_SHUT_DONE))
		tk_conn_close(c, c->end_err);
}

/* Ending, FIN sent: wait for the peer's FIN, but not for ever. */
static void
start_linger(struct tk_conn *c)
{
	c->deadline = tk_loop_now(c->loop) + c->opts.linger_ms;
	c->deadline_err = c->end_err;
	arm_timer(c);
}

static void
send_fin(struct tk_conn *c)
{
	int err = 0;

	/*
	 * With the peer's FIN in and nothing left to send, close() sends our
	 * FIN at once: spare the shutdown() call (plain TCP only; TLS has its
	 * close_notify to send).
	 */
	if (!((c->flags & F_EOF) && c->tp == &tk__plain_tcp))
		err = c->tp->shutdown(c);
	if (err == -EAGAIN) {
		/*
		 * The transport's own last words (TLS close_notify) met a full
		 * socket: on writable, flush() calls again.  An ending
		 * connection waits no longer than its linger for that.
		 */
		if ((c->flags & F_ENDING) && c->deadline == 0)
			start_linger(c);
		update_interest(c);
		return;
	}
	c->flags |= F_SHUT_DONE;
	if (err < 0 && err != -ENOTCONN) {
		tk_conn_close(c, err);
		return;
	}
	/* With the peer's FIN in, maybe_finish() closes now: no linger. */
	if ((c->flags & F_ENDING) && !(c->flags & F_EOF))
		start_linger(c);
	maybe_finish(c);
}

/*
 * A write failed: c closes, unless its peer may stop reading (and what it
 * wrote before is still to be read): then only c's output ends, and c
 * closes once its input has.
 */
static int
write_failed(struct tk_conn *c, int err)
{
	if ((err != -EPIPE && err != -ECONNRESET) ||
	    !(c->flags & F_PEER_MAY_STOP)) {
		tk_conn_close(c, err);
		return err;
	}
	tk_buf_consume(&c->out, tk_buf_len(&c->out));
	tk_buf_trim(&c->out);
	c->flags |= F_SHUT_WANT | F_SHUT_DONE;
	c->flags &= ~(F_BACKPRESSURE | F_DRAIN_WANT);
	update_interest(c);
	maybe_finish(c);
	return err;
}

/*
 * Write pending output.  Returns 0, or a negative code if c closed (or its
 * output ended: write_failed()).
 */
static int
flush(struct tk_conn *c)
{
	while (tk_buf_len(&c->out) > 0) {
		ssize_t n = c->tp->write(c, tk_buf_peek(&c->out),
					 tk_buf_len(&c->out));

		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			break;
		if (n < 0)
			return write_failed(c, (int)n);
		tk_buf_consume(&c->out, (size_t)n);
		c->bytes_out += (uint64_t)n;
		if (c->ctr != NULL)
			tk__ctr_add(&c->ctr->bytes_out, (uint64_t)n);
		note_written(c);
		c->last_active = tk_loop_now(c->loop);
	}
	if ((c->flags & F_BACKPRESSURE) &&
	    tk_buf_len(&c->out) <= c->opts.max_pending / 2)
		c->flags &= ~F_BACKPRESSURE;
	if (tk_buf_len(&c->out) == 0) {
		tk_buf_trim(&c->out);
		if ((c->flags & F_SHUT_WANT) && !(c->flags & F_SHUT_DONE)) {
			send_fin(c);
			if (c->state != ST_OPEN)
				return -EPIPE;
		}
	}
	update_interest(c);
	return 0;
}

static bool
framing(const struct tk_conn *c)
{
	return (c->svc->flags & TK_SERVICE_LINE_FRAMING) &&
	       c->svc->data != NULL;
}

/* May the service be given input now? */
static bool
can_deliver(const struct tk_conn *c)
{
	return c->state == ST_OPEN && !(c->flags & (F_ENDING | F_PAUSED));
}

/* Bytes held for line framing: a partial line, or lines a pause held. */
static size_t
held(const struct tk_conn *c)
{
	return c->lines != NULL ? tk_buf_len(c->lines) : 0;
}

/*
 * Hold data[0..n) behind what is held.  The buffer is allocated the first
 * time (most connections never hold a byte); it is bounded by the reads,
 * which a pause stops, and a partial line by max_line.
 */
static int
hold(struct tk_conn *c, const char *data, size_t n)
{
	if (c->lines == NULL) {
		c->lines = malloc(sizeof(*c->lines));
		if (c->lines == NULL)
			return -ENOMEM;
		tk_buf_init(c->lines, SIZE_MAX);
	}
	return tk_buf_append(c->lines, data, n);
}

/*
 * A line is over the limit: the lines before it were delivered; it and
 * all input after it are not.  A text peer is told, then c ends.
 */
static void
line_too_long(struct tk_conn *c)
{
	if (c->lines != NULL) {
		tk_buf_consume(c->lines, tk_buf_len(c->lines));
		tk_buf_trim(c->lines);
	}
	/*
	 * Told in a line if the peer can still be told (not after our own
	 * shutdown); either way c ends, and nothing of the line is given.
	 */
	if ((c->svc->flags & TK_SERVICE_TEXT) &&
	    !(c->flags & (F_SHUT_WANT | F_ENDING)))
		(void)tk_conn_write(c, TOO_LONG_LINE,
				    sizeof(TOO_LONG_LINE) - 1);
	if (c->state != ST_OPEN)
		return; /* the write failed and closed c, with the reason */
	tk_conn_end_error(c, TK_ELINETOOLONG);
}

/*
 * The line deadline: after a line, the next one's runs from its first
 * byte (now, if some is here already), none between lines.
 */
static void
line_clock(struct tk_conn *c, bool line_begun)
{
	if (c->opts.line_timeout_ms == 0 || c->state != ST_OPEN ||
	    (c->flags & F_ENDING))
		return;
	if (line_begun)
		tk_conn_set_deadline(c, c->opts.line_timeout_ms,
				     TK_ELINETIMEOUT);
	else
		tk_conn_set_deadline(c, 0, 0);
}

/*
 * Deliver the complete lines held in c->lines while the service takes
 * them; then, at EOF, the last partial line as it is and TK_EOF.
 */
static void
deliver_held(struct tk_conn *c)
{
	size_t len;

	while (held(c) > 0 && can_deliver(c)) {
		ssize_t used = tk_line_parse(tk_buf_peek(c->lines), held(c),
					     c->opts.max_line, &len);

		if (used < 0) {
			line_too_long(c);
			return;
		}
		if (used == 0)
			break;
		/* The buffer stays put: only reads append, none runs now. */
		c->svc->data(c, tk_buf_peek(c->lines), used, c->arg);
		if (c->state != ST_OPEN)
			return;
		tk_buf_consume(c->lines, (size_t)used);
		line_clock(c, held(c) > 0);
	}
	if (!(c->flags & F_EOF) || (c->flags & F_EOF_TOLD) || !can_deliver(c))
		return;
	if (held(c) > 0) {
		c->svc->data(c, tk_buf_peek(c->lines), (ssize_t)held(c),
			     c->arg);
		if (c->state != ST_OPEN)
			return;
		tk_buf_consume(c->lines, held(c));
		/* Paused on the last line: the EOF waits for the resume. */
		if (!can_deliver(c))
			return;
	}
	if (c->lines != NULL)
		tk_buf_trim(c->lines);
	c->flags |= F_EOF_TOLD;
	line_clock(c, false);
	c->svc->data(c, NULL, TK_EOF, c->arg);
}

/*
 * Deliver data[0..n) one line per call, straight from the read buffer
 * while nothing is held; what is left (a partial line, or the rest after
 * a pause) is kept in c->lines.  A pause stops reads, so what is held is
 * at most one read and a partial line.
 */
static void
deliver_lines(struct tk_conn *c, const char *data, size_t n)
{
	size_t len;

	if (held(c) > 0) {
		if (hold(c, data, n) < 0) {
			tk_conn_close(c, -ENOMEM);
			return;
		}
		deliver_held(c);
		return;
	}
	while (n > 0 && can_deliver(c)) {
		ssize_t used = tk_line_parse(data, n, c->opts.max_line, &len);

		if (used < 0) {
			line_too_long(c);
			return;
		}
		if (used == 0)
			break;
		c->svc->data(c, data, used, c->arg);
		data += used;
		n -= (size_t)used;
		line_clock(c, n > 0);
	}
	if (n == 0 || c->state != ST_OPEN || (c->flags & F_ENDING))
		return;
	if (hold(c, data, n) < 0) {
		tk_conn_close(c, -ENOMEM);
		return;
	}
	/* A new line's first bytes: its deadline runs from now. */
	if (c->deadline == 0)
		line_clock(c, true);
	/* A partial line too long already fails now, not when it ends. */
	if (!(c->flags & F_PAUSED) &&
	    tk_line_parse(tk_buf_peek(c->lines), held(c), c->opts.max_line,
			  &len) < 0)
		line_too_long(c);
}

static void
read_some(struct tk_conn *c)
{
	size_t size;
	char *buf = tk__loop_read_buf(c->loop, &size);

	if (buf == NULL) {
		tk_conn_close(c, -ENOMEM);
		return;
	}
	if (c->opts.read_size != 0 && c->opts.read_size < size)
		size = c->opts.read_size;
	/* Lines a pause held (and an EOF behind them) go before new input. */
	if (framing(c) && c->state == ST_OPEN && !(c->flags & F_ENDING) &&
	    (held(c) > 0 || (c->flags & F_EOF))) {
		deliver_held(c);
		maybe_finish(c);
		if (c->state != ST_OPEN || (c->flags & F_PAUSED))
			return;
	}
	for (int i = 0; i < CONN_MAX_READS; i++) {
		size_t want = size, room;
		ssize_t n;

		if (c->state != ST_OPEN || !wants_read(c))
			return;
		/*
		 * Read no more than output may still grow by, so what a
		 * service queues in answer stays within max_pending (room is
		 * never 0 here: backpressure stops reads at max_pending).
		 */
		room = c->opts.max_pending - tk_buf_len(&c->out);
		if (room < want && !(c->flags & F_ENDING))
			want = room;
		n = c->tp->read(c, buf, want);
		if (n > 0) {
			c->bytes_in += (uint64_t)n;
			if (c->ctr != NULL)
				tk__ctr_add(&c->ctr->bytes_in, (uint64_t)n);
			c->last_active = tk_loop_now(c->loop);
			if (c->flags & F_ENDING)
				continue; /* draining towards the FIN */
			note_read(c);
			/* tk_conn_write() applies backpressure, if any. */
			if (framing(c))
				deliver_lines(c, buf, (size_t)n);
			else if (c->svc->data != NULL)
				c->svc->data(c, buf, n, c->arg);
			if ((size_t)n < want)
				return; /* drained: spare a read that EAGAINs */
			continue;
		}
		/* A peer that went with our bytes unread: its end, all read. */
		if (n == -ECONNRESET && (c->flags & F_PEER_MAY_STOP))
			n = 0;
		if (n == 0) {
			c->flags |= F_EOF;
			if (framing(c) && !(c->flags & F_ENDING))
				deliver_held(c);
			else if (!(c->flags & F_ENDING) && c->svc->data != NULL)
				c->svc->data(c, NULL, TK_EOF, c->arg);
			maybe_finish(c);
			/* Often closed by now: then no epoll_ctl is needed. */
			update_interest(c);
			return;
		}
		if (n == -EINTR)
			continue;
		if (n != -EAGAIN)
			tk_conn_close(c, (int)n);
		return;
	}
}

/*
 * Read what the socket (and the transport) holds.  A transport may keep
 * decrypted bytes that raise no epoll event: if reading stopped with some
 * left (the fairness cap), come back for them after this round.
 */
static void
on_readable(struct tk_conn *c)
{
	read_some(c);
	if (c->state == ST_OPEN && wants_read(c) && c->tp->pending != NULL &&
	    c->tp->pending(c) > 0)
		tk__loop_defer(c->loop, &c->read_defer);
}

static void
read_buffered(struct tk__defer *d)
{
	struct tk_conn *c =
		(struct tk_conn *)((char *)d -
				   offsetof(struct tk_conn, read_defer));

	/*
	 * Queued while open; a close since leaves nothing to do.  Lines held
	 * by a pause (and their EOF) are delivered even with reading over.
	 */
	if (c->state == ST_OPEN &&
	    (wants_read(c) ||
	     (framing(c) && !(c->flags & (F_PAUSED | F_ENDING)))))
		on_readable(c);
}

static void
on_writable(struct tk_conn *c)
{
	if (flush(c) < 0 || c->state != ST_OPEN)
		return;
	/* Once per crossing of the mark, not on every writable event. */
	if ((c->flags & F_DRAIN_WANT) &&
	    tk_buf_len(&c->out) <= c->opts.drain_lowat) {
		c->flags &= ~F_DRAIN_WANT;
		if (c->svc->drain != NULL &&
		    !(c->flags & (F_ENDING | F_SHUT_WANT)))
			c->svc->drain(c, c->arg);
	}
}

static void
on_io(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct tk_conn *c = arg;

	if (c->flags & F_RAW) {
		if (c->state == ST_OPEN)
			c->raw_io(loop, fd, events, c->raw_arg);
		return;
	}
	if (c->state == ST_PROXY) {
		proxy_step(c);
		return;
	}
	if (c->state == ST_HANDSHAKE) {
		handshake_step(c);
		return;
	}
	if (c->tp->want != NULL && c->state == ST_OPEN) {
		/* A TLS read that must write first, or the reverse. */
		unsigned odd = c->tp->want(c) & events;

		if (odd & TK_WRITABLE)
			events |= TK_READABLE;
		if (odd & TK_READABLE)
			events |= TK_WRITABLE;
	}
	if ((events & TK_WRITABLE) && c->state == ST_OPEN)
		on_writable(c);
	if ((events & TK_READABLE) && c->state == ST_OPEN)
		on_readable(c);
	if ((events & TK_HANGUP) && c->state == ST_OPEN &&
	    !(events & (TK_READABLE | TK_WRITABLE))) {
		/* Nothing asked for, yet the socket is dead: say why. */
		int err = tk__sock_error(c->fd);

		/*
		 * Both FINs are in, but a paused reader has still to read the
		 * peer's last bytes and its EOF.  The hang-up is
		 * level-triggered: park the fd (unwatched) until
		 * update_interest() wants it.
		 */
		if (err == 0 && !(c->flags & F_EOF)) {
			tk_loop_unwatch(c->loop, c->fd);
			return;
		}
		tk_conn_close(c, err);
	}
}

static void
on_timer(struct tk_timer *t, void *arg)
{
	struct tk_conn *c = arg;
	uint64_t now = tk_loop_now(c->loop);

	(void)t;
	if (c->state == ST_CONNECTING) {
		tk__conn_set_error(c, tk__connect_trying(c), TK_ECONNTIMEDOUT);
		tk_conn_close(c, TK_ECONNTIMEDOUT);
		return;
	}
	if (c->state == ST_PROXY) {
		char where[TK_ADDRSTRLEN], msg[TK_ADDRSTRLEN + 64];

		snprintf(msg, sizeof(msg), "%s: no answer from the proxy",
			 tk_addr_format(&c->peer, where, sizeof(where)));
		tk__conn_set_detail(c, msg);
		tk_conn_close(c, TK_ECONNTIMEDOUT);
		return;
	}
	if (c->state == ST_HANDSHAKE) {
		tk__conn_set_error(c, &c->peer, TK_EHANDSHAKETIMEDOUT);
		tk_conn_close(c, TK_EHANDSHAKETIMEDOUT);
		return;
	}
	if (c->state != ST_OPEN)
		return;
	if (c->deadline != 0 && now >= c->deadline) {
		/* (While ending, the deadline is the linger: err may be 0.) */
		if (c->deadline_err != 0)
			tk__conn_set_error(c, &c->peer, c->deadline_err);
		tk_conn_close(c, c->deadline_err);
		return;
	}
	if (c->opts.idle_timeout_ms != 0 && !lingering(c) &&
	    now - c->last_active >= c->opts.idle_timeout_ms) {
		tk__conn_set_error(c, &c->peer, TK_EIDLE);
		tk_conn_close(c, TK_EIDLE);
		return;
	}
	/* Activity since the timer was set: sleep for what is left. */
	arm_timer(c);
}

static void
open_service(struct tk_conn *c)
{
	int err;

	c->state = ST_OPEN;
	c->opened_at = c->last_active = tk_loop_now(c->loop);
	err = tk__loop_watch_own(c->loop, c->fd, TK_READABLE, on_io, c);
	if (err < 0) {
		tk_conn_close(c, err);
		return;
	}
	arm_timer(c);
	if (c->owner != NULL && c->owner->handshake != NULL &&
	    tk_conn_is_tls(c))
		c->owner->handshake(c);
	if (c->state != ST_OPEN)
		return; /* closed by the owner's event */
	/* The first line's deadline runs from the open. */
	if (framing(c))
		line_clock(c, true);
	if (c->svc->open != NULL && (err = c->svc->open(c, c->arg)) < 0)
		tk_conn_close(c, err);
}

/*
 * One step of the transport's handshake; on success the service opens.  No
 * application byte moves before this: until then c is not open.
 */
static void
handshake_step(struct tk_conn *c)
{
	unsigned want = 0;
	int err = c->tp->handshake(c, &want);

	if (err == -EAGAIN) {
		err = tk_loop_modify(c->loop, c->fd, want);
		if (err == 0)
			return;
	}
	if (err < 0) {
		tk_conn_close(c, err);
		return;
	}
	tk_loop_unwatch(c->loop, c->fd);
	open_service(c);
}

static void
start_handshake(struct tk_conn *c)
{
	int err;

	c->state = ST_HANDSHAKE;
	c->opened_at = c->last_active = tk_loop_now(c->loop);
	err = tk__loop_watch_own(c->loop, c->fd, 0, on_io, c);
	if (err < 0) {
		tk_conn_close(c, err);
		return;
	}
	if ((err = tk_timer_start(&c->timer, c->opts.handshake_timeout_ms, 0)) <
	    0) {
		tk_conn_close(c, err);
		return;
	}
	handshake_step(c);
}

int
tk__conn_attach_layer(struct tk_conn *c, const char *servername)
{
	const struct tk__layer *layer = (const void *)c->opts.tls;

	if (layer == NULL || c->tp != &tk__plain_tcp)
		return 0;
	return layer->attach(c, c->opts.tls, servername);
}

static void start_own(struct tk_conn *c);

/*
 * One step of the proxy's handshake, under the connect deadline (still
 * running): the tunnel is part of getting connected.
 */
static void
proxy_step(struct tk_conn *c)
{
	unsigned want = 0;
	int err = tk__proxy_step(c, &want);

	if (err == -EAGAIN) {
		err = tk_loop_modify(c->loop, c->fd, want);
		if (err == 0)
			return;
	}
	if (err < 0) {
		tk_conn_close(c, err);
		return;
	}
	tk_loop_unwatch(c->loop, c->fd);
	tk__proxy_free(c->px);
	c->px = NULL;
	tk_timer_stop(&c->timer);
	start_own(c);
}

void
tk__conn_start(struct tk_conn *c)
{
	int err;

	/* The server's open event may have turned the client away. */
	if (c->state == ST_CLOSED)
		return;
	if (!(c->flags & F_SOCKOPTS)) {
		(void)tk__sock_conn_opts(c->fd, c->opts.no_delay,
					 c->opts.sndbuf, c->opts.max_pending);
		(void)tk__sock_keepalive(c->fd, &c->opts);
	}
	c->flags |= F_SOCKOPTS;
	if (c->px != NULL) {
		c->state = ST_PROXY;
		err = tk__loop_watch_own(c->loop, c->fd, 0, on_io, c);
		if (err < 0) {
			tk_conn_close(c, err);
			return;
		}
		proxy_step(c);
		return;
	}
	start_own(c);
}

/* The connection's own start: its transport's handshake, or the open. */
static void
start_own(struct tk_conn *c)
{
	int err;

	/* A client's session was made at connect (it holds the name). */
	if ((err = tk__conn_attach_layer(c, NULL)) < 0) {
		tk_conn_close(c, err);
		return;
	}
	if (c->tp->handshake != NULL)
		start_handshake(c);
	else
		open_service(c);
}

struct tk_conn *
tk__conn_accepted(struct tk_loop *loop, struct tk_server *srv,
		  const struct tk__conn_owner *owner, unsigned worker,
		  struct tk__counters *ctr, int fd, const struct tk_addr *peer,
		  const struct tk_conn_opts *opts, const struct tk_service *svc,
		  void *arg)
{
	struct tk_conn *c = tk__conn_new(loop, opts, svc, arg);

	if (c == NULL)
		return NULL;
	c->server = srv;
	c->owner = owner;
	c->flags |= F_SOCKOPTS; /* from the listener (tk_server_listen()) */
	c->worker = worker;
	c->ctr = ctr;
	c->fd = fd;
	c->peer = *peer;
	c->state = ST_CONNECTING; /* until tk__conn_start() */
	return c;
}

struct tk_conn *
tk__conn_adopt(struct tk_loop *loop, int fd, const struct tk__transport *tp,
	       void *state, const struct tk_conn_opts *opts,
	       const struct tk_service *svc, void *arg)
{
	struct tk_conn *c = tk__conn_new(loop, opts, svc, arg);

	if (c == NULL)
		return NULL;
	c->fd = fd;
	(void)tk__sock_peer(fd, &c->peer);
	c->state = ST_CONNECTING; /* until tk__conn_start() */
	tk__conn_set_transport(c, tp, state);
	tk__conn_start(c);
	return c;
}

struct tk_conn **
tk__conn_next(struct tk_conn *c)
{
	return &c->next;
}

struct tk_conn **
tk__conn_prev(struct tk_conn *c)
{
	return &c->prev;
}

/* Can c take len more bytes of output?  0, or the code to return. */
static int
check_write(struct tk_conn *c, size_t len)
{
	if (c->state != ST_OPEN)
		return c->state == ST_CLOSED ? -EPIPE : -ENOTCONN;
	if (c->flags & F_RAW)
		return -EBUSY; /* a relay's: its bytes go one way only */
	if (c->flags & (F_SHUT_WANT | F_ENDING))
		return -EPIPE;
	if (len > c->opts.max_output - tk_buf_len(&c->out)) {
		/* Never a silent loss: the peer sees a reset, not a gap. */
		tk_conn_abort(c, -ENOBUFS);
		return -ENOBUFS;
	}
	return 0;
}

/* Write or queue len bytes that check_write() let through. */
static int
write_checked(struct tk_conn *c, const void *data, size_t len)
{
	const char *p = data;
	int err;

	/* Write first; wait for writable only after EAGAIN. */
	while (tk_buf_len(&c->out) == 0 && len > 0) {
		ssize_t n = c->tp->write(c, p, len);

		if (n == -EINTR)
			continue;
		if (n == -EAGAIN)
			break;
		if (n < 0)
			return write_failed(c, (int)n);
		p += n;
		len -= (size_t)n;
		c->bytes_out += (uint64_t)n;
		if (c->ctr != NULL)
			tk__ctr_add(&c->ctr->bytes_out, (uint64_t)n);
		note_written(c);
		c->last_active = tk_loop_now(c->loop);
	}
	if (len == 0)
		return 0;
	err = tk_buf_append(&c->out, p, len);
	if (err < 0) {
		tk_conn_close(c, err);
		return err;
	}
	if (tk_buf_len(&c->out) >= c->opts.max_pending)
		c->flags |= F_BACKPRESSURE;
	if (tk_buf_len(&c->out) > c->opts.drain_lowat)
		c->flags |= F_DRAIN_WANT;
	update_interest(c);
	return 0;
}

int
tk_conn_write(struct tk_conn *c, const void *data, size_t len)
{
	int err = check_write(c, len);

	if (err < 0 || len == 0)
		return err;
	return write_checked(c, data, len);
}

int
tk_conn_writev(struct tk_conn *c, const struct iovec *iov, int n)
{
	size_t total = 0;
	int err;

	if (n < 0 || (n > 0 && iov == NULL))
		return -EINVAL;
	for (int i = 0; i < n; i++) {
		if (iov[i].iov_len > SIZE_MAX - total)
			total = SIZE_MAX; /* more than any max_output */
		else
			total += iov[i].iov_len;
	}
	if ((err = check_write(c, total)) < 0)
		return err;
	/* All fits: each part is written or queued, or c closes. */
	for (int i = 0; i < n && err == 0; i++)
		if (iov[i].iov_len > 0)
			err = write_checked(c, iov[i].iov_base, iov[i].iov_len);
	return err;
}

size_t
tk_conn_room(const struct tk_conn *c)
{
	if (c->state != ST_OPEN ||
	    (c->flags & (F_SHUT_WANT | F_ENDING | F_RAW)))
		return 0;
	return c->opts.max_output - tk_buf_len(&c->out);
}

size_t
tk_conn_max_pending(const struct tk_conn *c)
{
	return c->opts.max_pending;
}

size_t
tk_conn_max_output(const struct tk_conn *c)
{
	return c->opts.max_output;
}

void
tk_conn_reserve_output(struct tk_conn *c, size_t extra)
{
	size_t want = c->opts.max_pending + extra;

	if (want < c->opts.max_pending)
		want = SIZE_MAX; /* overflow: as much as there is */
	if (c->opts.max_output < want) {
		c->opts.max_output = want;
		c->out.max = want;
	}
}

size_t
tk_conn_pending(const struct tk_conn *c)
{
	return tk_buf_len(&c->out);
}

void
tk_conn_shutdown(struct tk_conn *c)
{
	if (c->state != ST_OPEN || (c->flags & (F_SHUT_WANT | F_RAW)))
		return;
	c->flags |= F_SHUT_WANT;
	if (tk_buf_len(&c->out) == 0)
		send_fin(c);
}

void
tk_conn_end(struct tk_conn *c)
{
	bool fin_sent;

	if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
		tk_conn_close(c, 0);
		return;
	}
	if (c->state != ST_OPEN || (c->flags & F_ENDING))
		return;
	/* A relay's socket has no graceful end of conn.c's: close. */
	if (c->flags & F_RAW) {
		tk_conn_close(c, c->end_err);
		return;
	}
	fin_sent = c->flags & F_SHUT_DONE;
	c->flags |= F_ENDING;
	c->flags &= ~(F_PAUSED | F_BACKPRESSURE);
	tk_conn_shutdown(c);
	if (c->state != ST_OPEN)
		return;
	if (fin_sent)
		start_linger(c); /* FIN went out before: linger from now */
	update_interest(c);
}

void
tk_conn_end_error(struct tk_conn *c, int err)
{
	if (c->state == ST_OPEN && !(c->flags & F_ENDING))
		c->end_err = err;
	tk_conn_end(c);
}

void
tk_conn_set_deadline(struct tk_conn *c, uint64_t ms, int err)
{
	if (c->state != ST_OPEN)
		return;
	c->deadline = ms ? tk_loop_now(c->loop) + ms : 0;
	c->deadline_err = err;
	arm_timer(c);
}

void
tk__conn_stop(struct tk_conn *c)
{
	/* Closed, its close callback still to come: only that runs now. */
	if (c->state == ST_CLOSED)
		return;
	if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
		tk_conn_close(c, -ECANCELED);
		return;
	}
	if (c->svc->stop != NULL)
		c->svc->stop(c, c->arg);
	else
		tk_conn_end(c);
}

unsigned
tk_conn_worker(const struct tk_conn *c)
{
	return c->worker;
}

void
tk_conn_pause(struct tk_conn *c)
{
	c->flags |= F_PAUSED;
	update_interest(c);
}

void
tk_conn_resume(struct tk_conn *c)
{
	c->flags &= ~F_PAUSED;
	update_interest(c);
	/* Lines held by the pause raise no event: deliver them next round. */
	if (c->state == ST_OPEN && framing(c) &&
	    (held(c) > 0 || (c->flags & (F_EOF | F_EOF_TOLD)) == F_EOF))
		tk__loop_defer(c->loop, &c->read_defer);
}

void
tk__conn_set_service(struct tk_conn *c, const struct tk_service *svc, void *arg,
		     size_t drain_lowat)
{
	c->svc = svc;
	c->arg = arg;
	c->opts.drain_lowat = drain_lowat;
}

void
tk__conn_hold_output(struct tk_conn *c, size_t hold)
{
	/*
	 * The relay stops its source one read past `hold`; c's own
	 * backpressure (and the read room it leaves c) must stay clear of
	 * that, or c's direction would wait on the other's.
	 */
	size_t want = hold + 2 * TK__LOOP_READ_BUF;

	if (want < hold)
		want = SIZE_MAX / 2;
	if (c->opts.max_pending < want)
		c->opts.max_pending = want;
	tk_conn_reserve_output(c, 0);
}

void
tk__conn_peer_may_stop(struct tk_conn *c)
{
	c->flags |= F_PEER_MAY_STOP;
}

bool
tk__conn_eof_read(const struct tk_conn *c)
{
	return (c->flags & F_EOF) != 0;
}

bool
tk__conn_raw_ok(const struct tk_conn *c)
{
	return c->state == ST_OPEN && c->tp == &tk__plain_tcp &&
	       tk_buf_len(&c->out) == 0 && held(c) == 0 &&
	       !(c->flags & (F_EOF | F_SHUT_WANT | F_ENDING | F_RAW));
}

void
tk__conn_raw_begin(struct tk_conn *c, tk_io_cb io, void *arg)
{
	c->flags |= F_RAW;
	c->flags &= ~(F_PAUSED | F_BACKPRESSURE | F_DRAIN_WANT);
	c->raw_io = io;
	c->raw_arg = arg;
}

int
tk__conn_raw_interest(struct tk_conn *c, unsigned ev)
{
	int err;

	if (c->state != ST_OPEN)
		return -EPIPE;
	err = tk_loop_modify(c->loop, c->fd, ev);
	/* Parked after a hang-up (the relay's unwatch): watched again. */
	if (err == -ENOENT)
		err = ev != 0 ? tk__loop_watch_own(c->loop, c->fd, ev, on_io, c)
			      : 0;
	if (err < 0)
		tk_conn_close(c, err);
	return err;
}

void
tk__conn_raw_moved(struct tk_conn *c, uint64_t in, uint64_t out)
{
	c->bytes_in += in;
	c->bytes_out += out;
	if (c->ctr != NULL) {
		if (in != 0)
			tk__ctr_add(&c->ctr->bytes_in, in);
		if (out != 0)
			tk__ctr_add(&c->ctr->bytes_out, out);
	}
	if (in != 0)
		note_read(c);
	if (out != 0)
		note_written(c);
	c->last_active = tk_loop_now(c->loop);
}

int
tk__conn_raw_shutdown(struct tk_conn *c)
{
	int err;

	if (c->state != ST_OPEN || (c->flags & F_SHUT_DONE))
		return 0;
	err = c->tp->shutdown(c);
	c->flags |= F_SHUT_WANT | F_SHUT_DONE;
	return err == -ENOTCONN ? 0 : err;
}

void
tk_conn_set_idle_timeout(struct tk_conn *c, uint64_t ms)
{
	c->opts.idle_timeout_ms = ms;
	if (c->state == ST_OPEN)
		arm_timer(c);
}

void
tk_conn_set_data(struct tk_conn *c, void *data)
{
	c->data = data;
}

void *
tk_conn_data(const struct tk_conn *c)
{
	return c->data;
}

struct tk_loop *
tk_conn_loop(const struct tk_conn *c)
{
	return c->loop;
}

struct tk_server *
tk_conn_server(const struct tk_conn *c)
{
	return c->server;
}

const struct tk_addr *
tk_conn_peer(const struct tk_conn *c)
{
	return &c->peer;
}

const struct tk_addr *
tk_conn_local(const struct tk_conn *c)
{
	/*
	 * Asked for rarely: looked up on first use rather than with a system
	 * call on every accept.  The cache is not part of c's visible state.
	 */
	static const struct tk_addr unknown; /* family 0: formats as "?" */
	struct tk_conn *mc = (struct tk_conn *)c;

	if (mc->local == NULL && mc->fd >= 0 &&
	    (mc->local = calloc(1, sizeof(*mc->local))) != NULL &&
	    tk__sock_local(mc->fd, mc->local) < 0)
		mc->local->len = 0;
	return mc->local != NULL ? mc->local : &unknown;
}

int
tk_conn_fd(const struct tk_conn *c)
{
	return c->fd;
}

uint64_t
tk_conn_bytes_in(const struct tk_conn *c)
{
	return c->bytes_in;
}

uint64_t
tk_conn_bytes_out(const struct tk_conn *c)
{
	return c->bytes_out;
}

uint64_t
tk_conn_age_ms(const struct tk_conn *c)
{
	if (c->opened_at == 0)
		return 0;
	return tk_loop_now(c->loop) - c->opened_at;
}

bool
tk_conn_is_open(const struct tk_conn *c)
{
	return c->state == ST_OPEN;
}

const char *
tk_conn_last_error(const struct tk_conn *c)
{
	return c->errmsg != NULL ? c->errmsg : "";
}
