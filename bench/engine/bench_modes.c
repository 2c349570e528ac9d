/* bench_modes.c: what each mode of `tcpkit bench` says and checks on a
 * connection: echo (closed and open loop), bulk, idle, rate and greet. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench_int.h"

/* --- send times ---------------------------------------------------------- */

/* Send times: a ring that grows by doubling, never per message. */
bool
bench_fifo_reserve(struct bconn *bc, uint32_t need)
{
	uint32_t cap = bc->fifo_cap ? bc->fifo_cap : 1;
	uint64_t *v;

	if (need <= bc->fifo_cap)
		return true;
	while (cap < need)
		cap *= 2;
	v = malloc((size_t)cap * sizeof(*v));
	if (v == NULL)
		return false;
	for (uint32_t i = 0; i < bc->fifo_len; i++)
		v[i] = bc->fifo[(bc->fifo_head + i) & (bc->fifo_cap - 1)];
	free(bc->fifo);
	bc->fifo = v;
	bc->fifo_cap = cap;
	bc->fifo_head = 0;
	return true;
}

/* --- echo ---------------------------------------------------------------- */

/* Is p[0..n) what message rx_seq holds at rx_pos? */
static inline bool
echo_check(const struct bench *b, const struct bconn *bc, const char *p,
	   size_t n)
{
	size_t pos = bc->rx_pos;

	if (pos < b->hdr) {
		uint64_t le = htole64(bc->rx_seq);
		size_t k = b->hdr - pos < n ? b->hdr - pos : n;

		if (memcmp(p, (const char *)&le + pos, k) != 0)
			return false;
		p += k;
		n -= k;
		pos += k;
	}
	return n == 0 ||
	       memcmp(p, b->pattern + bc->rx_off + (pos - b->hdr), n) == 0;
}

static inline void
advance(const struct bench *b, uint32_t *off)
{
	*off += b->msg_step;
	if (*off >= b->period)
		*off -= b->period;
}

/*
 * Send n messages stamped t: composed into one buffer and written at once
 * (one system call for a batch); a message larger than the buffer goes as
 * its header and its payload straight from the pattern.  Returns 0, or a
 * negative code once the connection has closed.
 */
int
bench_echo_send(struct bconn *bc, uint32_t n, uint64_t t)
{
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	size_t size = b->o->size, len = 0;
	char *out = w->scratch;
	int err;

	if (!bench_fifo_reserve(bc, bc->fifo_len + n)) {
		tk_conn_close(bc->conn, -ENOMEM);
		return -ENOMEM;
	}
	while (n > 0) {
		if (size > SCRATCH_SIZE) {
			uint64_t le = htole64(bc->tx_seq);

			if (b->hdr > 0 &&
			    (err = tk_conn_write(bc->conn, &le, b->hdr)) < 0)
				return err;
			err = tk_conn_write(bc->conn, b->pattern + bc->tx_off,
					    size - b->hdr);
			if (err < 0)
				return err;
		} else {
			if (b->hdr > 0) {
				uint64_t le = htole64(bc->tx_seq);

				memcpy(out + len, &le, b->hdr);
			}
			memcpy(out + len + b->hdr, b->pattern + bc->tx_off,
			       size - b->hdr);
			len += size;
		}
		fifo_push(bc, t);
		bc->tx_seq++;
		advance(b, &bc->tx_off);
		if (w->phase == PH_MEASURE)
			w->st.bytes_out += size;
		n--;
		if (len > 0 && (n == 0 || len + size > SCRATCH_SIZE)) {
			if ((err = tk_conn_write(bc->conn, out, len)) < 0)
				return err;
			len = 0;
		}
	}
	return 0;
}

/* The peer closed while we still expected bytes. */
static void
lost_eof(struct bconn *bc)
{
	struct worker *w = bc->w;

	if (bc->state != CS_OPEN)
		return;
	bench_count_errors(
		w, BENCH_ERR_RESET, 1,
		"%s: connection %u closed by the server during the run",
		w->b->o->where, bc->id);
	bc->state = CS_FAILED;
	tk_conn_end(bc->conn);
	bench_slot_done(bc);
}

static void
echo_more(struct bconn *bc, uint32_t done, uint64_t now)
{
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	uint64_t count = b->o->count;

	if (bc->state != CS_OPEN)
		return;
	if (!sending(w)) {
		if (bc->fifo_len == 0)
			bench_end_conn(bc);
		return;
	}
	if (b->open_loop) {
		if (count != 0 && bc->scheduled == count && bc->fifo_len == 0) {
			bench_end_conn(bc);
			bench_slot_done(bc);
		}
		return;
	}
	if (count != 0 && done > count - bc->tx_seq - bc->owed)
		done = (uint32_t)(count - bc->tx_seq - bc->owed);
	(void)now;
	if (done > 0) {
		/*
		 * Sent at the end of the loop's round, after every echo that
		 * came in it: a burst wakes a sleeping server once, where a
		 * send per echo would wake it for each, and the cost of a
		 * wakeup falls on the sender (measured: 15% less CPU per
		 * message with 1000 connections).
		 */
		bc->owed += done;
		if (!bc->flushing) {
			bc->flushing = true;
			w->flushq[w->nflush++] = bc;
			if (!tk_timer_is_active(w->flush_timer))
				tk_timer_start(w->flush_timer, 0, 0);
		}
	}
	if (count != 0 && bc->rx_seq == count) {
		bench_end_conn(bc);
		bench_slot_done(bc);
	}
}

static void
echo_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct bconn *bc = arg;
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	size_t size = b->o->size;
	uint32_t done = 0;
	uint64_t now;

	(void)c;
	if (n == TK_EOF) {
		lost_eof(bc);
		return;
	}
	now = now_ns();
	check_marks(w, now);
	while (n > 0) {
		size_t take = size - bc->rx_pos;

		if (bc->fifo_len == 0) {
			bench_count_errors(w, BENCH_ERR_MISMATCH, 1,
					   "connection %u: the server sent %zd "
					   "bytes more than it was sent",
					   bc->id, n);
			bench_fail_conn(bc);
			bench_slot_done(bc);
			return;
		}
		if (take > (size_t)n)
			take = (size_t)n;
		if (!bc->rx_bad && !echo_check(b, bc, data, take))
			bc->rx_bad = true;
		data += take;
		n -= (ssize_t)take;
		bc->rx_pos += (uint32_t)take;
		if (bc->rx_pos < size)
			break;
		complete(w, fifo_pop(bc), now, size);
		if (bc->rx_bad) {
			bench_count_errors(
				w, BENCH_ERR_MISMATCH, 1,
				"connection %u, message %llu: the echo "
				"differs from what was sent",
				bc->id, (unsigned long long)bc->rx_seq);
			bc->rx_bad = false;
		}
		bc->rx_pos = 0;
		bc->rx_seq++;
		advance(b, &bc->rx_off);
		done++;
	}
	if (done > 0)
		echo_more(bc, done, now);
}

void
bench_on_flush(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;
	uint32_t n = w->nflush;
	uint64_t now = now_ns();

	(void)t;
	w->nflush = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct bconn *bc = w->flushq[i];
		uint32_t k = bc->owed;

		bc->flushing = false;
		bc->owed = 0;
		if (bc->state == CS_OPEN && sending(w))
			(void)bench_echo_send(bc, k, now);
	}
}

/* Open loop: one message of bc, due at t. */
static void
open_loop_send(struct bconn *bc, uint64_t t)
{
	struct worker *w = bc->w;

	if (bc->state != CS_OPEN || bc->finished)
		return;
	bc->scheduled++;
	if (bc->fifo_len >= w->b->inflight_cap) {
		/* XXX: never sent, so it has no latency; counted instead. */
		bench_count_errors(
			w, BENCH_ERR_TIMEOUT, 1,
			"connection %u: %u messages unanswered; the next "
			"ones were not sent",
			bc->id, bc->fifo_len);
	} else if (!bench_fifo_reserve(bc, bc->fifo_len + 1)) {
		bench_count_errors(
			w, BENCH_ERR_TIMEOUT, 1,
			"connection %u: out of memory for send times", bc->id);
	} else if (bench_echo_send(bc, 1, t) < 0) {
		return;
	}
	if (w->b->o->count != 0 && bc->scheduled == w->b->o->count &&
	    bc->fifo_len == 0) {
		bench_end_conn(bc);
		bench_slot_done(bc);
	}
}

static inline uint64_t
due(const struct worker *w, uint64_t j)
{
	return w->b->t0 + (uint64_t)((double)j * w->interval);
}

void
bench_tick_arm(struct worker *w)
{
	uint64_t t = due(w, w->next_j);
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	its.it_value.tv_sec = (time_t)(t / NS_PER_S);
	its.it_value.tv_nsec = (long)(t % NS_PER_S);
	(void)timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/*
 * The open-loop schedule: a timerfd armed for the next message's due time
 * (nanoseconds, not the loop's milliseconds: latency is measured from the
 * due time, so a coarse tick would add its own delay to every sample).
 * Messages go round-robin over the thread's connections.
 */
void
bench_on_tick(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct worker *w = arg;
	uint64_t expirations, now, t;

	(void)loop;
	(void)events;
	(void)!read(fd, &expirations, sizeof(expirations));
	now = now_ns();
	check_marks(w, now);
	while (sending(w) && w->next_j < w->total_j &&
	       (t = due(w, w->next_j)) <= now) {
		struct bconn *bc = &w->conns[w->next_j % w->nconns];

		w->next_j++;
		open_loop_send(bc, t);
	}
	if (sending(w) && w->next_j < w->total_j)
		bench_tick_arm(w);
}

/* --- bulk ---------------------------------------------------------------- */

static inline const char *
bulk_pattern(const struct bench *b, const struct bconn *bc, uint64_t off)
{
	return b->pattern + (bc->id * (uint64_t)b->conn_step + off) % b->period;
}

/* Keep the window full, writing only when nothing waits in our buffer. */
void
bench_bulk_pump(struct bconn *bc, uint64_t now)
{
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	size_t size = b->o->size;
	uint64_t limit = b->o->count * size;

	while (sending(w) && bc->state == CS_OPEN &&
	       tk_conn_pending(bc->conn) == 0 &&
	       bc->tx_seq - bc->rx_seq + size <= b->o->window &&
	       (limit == 0 || bc->tx_seq < limit)) {
		fifo_push(bc, now);
		if (tk_conn_write(bc->conn, bulk_pattern(b, bc, bc->tx_seq),
				  size) < 0)
			return;
		bc->tx_seq += size;
		if (w->phase == PH_MEASURE)
			w->st.bytes_out += size;
	}
}

/* Count each block of -s bytes that differs once, however it was read. */
static void
bulk_mismatch(struct bconn *bc, const char *p, size_t n)
{
	const struct bench *b = bc->w->b;
	size_t size = b->o->size;
	uint64_t off = bc->rx_seq;

	while (n > 0) {
		size_t seg = size - (size_t)(off % size);
		uint64_t block = off / size;

		if (seg > n)
			seg = n;
		if (block != bc->bad_block &&
		    memcmp(p, bulk_pattern(b, bc, off), seg) != 0) {
			bc->bad_block = block;
			bench_count_errors(
				bc->w, BENCH_ERR_MISMATCH, 1,
				"connection %u, block %llu: the echo "
				"differs from what was sent",
				bc->id, (unsigned long long)block);
		}
		p += seg;
		n -= seg;
		off += seg;
	}
}

static void
bulk_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct bconn *bc = arg;
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	size_t size = b->o->size;
	uint64_t now, before;
	bool bad = false;

	(void)c;
	if (n == TK_EOF) {
		lost_eof(bc);
		return;
	}
	now = now_ns();
	check_marks(w, now);
	if ((uint64_t)n > bc->tx_seq - bc->rx_seq) {
		bench_count_errors(
			w, BENCH_ERR_MISMATCH, 1,
			"connection %u: the server sent more bytes than "
			"it was sent",
			bc->id);
		bench_fail_conn(bc);
		bench_slot_done(bc);
		return;
	}
	/* The pattern is readable for READ_MAX bytes from any offset. */
	for (size_t i = 0; i < (size_t)n && !bad; i += READ_MAX) {
		size_t k = (size_t)n - i < READ_MAX ? (size_t)n - i : READ_MAX;

		bad = memcmp(data + i, bulk_pattern(b, bc, bc->rx_seq + i),
			     k) != 0;
	}
	if (bad)
		bulk_mismatch(bc, data, (size_t)n);
	if (w->phase == PH_MEASURE)
		w->st.bytes_in += (uint64_t)n;
	before = bc->rx_seq / size;
	bc->rx_seq += (uint64_t)n;
	for (uint64_t k = bc->rx_seq / size; before < k; before++)
		complete(w, fifo_pop(bc), now, 0);
	if (b->o->count != 0 && bc->rx_seq == b->o->count * size) {
		bench_end_conn(bc);
		bench_slot_done(bc);
	} else if (!sending(w)) {
		if (bc->rx_seq == bc->tx_seq)
			bench_end_conn(bc);
	} else {
		bench_bulk_pump(bc, now);
	}
}

static void
bulk_drain(struct tk_conn *c, void *arg)
{
	(void)c;
	bench_bulk_pump(arg, now_ns());
}

/* --- idle ---------------------------------------------------------------- */

static void
idle_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct bconn *bc = arg;

	(void)c;
	(void)data;
	if (n == TK_EOF)
		lost_eof(bc);
	else if (bc->w->phase == PH_MEASURE)
		bc->w->st.bytes_in += (uint64_t)n;
}

/* --- rate and greet ----------------------------------------------------- */

static int
op_open(struct tk_conn *c, void *arg)
{
	struct bconn *bc = arg;
	struct worker *w = bc->w;

	bc->state = CS_OPEN;
	bc->opened = true;
	w->open++;
	w->st.established++;
	atomic_store_explicit(&w->b->any_open, true, memory_order_relaxed);
	if (w->b->o->mode == BENCH_RATE) {
		if (w->phase == PH_MEASURE)
			w->st.bytes_out += w->b->line_len;
		return tk_conn_write(c, w->b->line, w->b->line_len);
	}
	return 0;
}

static void
op_success(struct bconn *bc)
{
	struct worker *w = bc->w;
	uint64_t now = now_ns();

	check_marks(w, now);
	complete(w, bc->t_begin, now, bc->got);
	bench_end_conn(bc);
}

/*
 * The operation failed: e is BENCH_ERR_RESET when the server closed where
 * an answer was due (it may have died), BENCH_ERR_PROTOCOL when what it
 * sent does not fit the protocol.
 */
static void
op_failed(struct bconn *bc, enum bench_err e, const char *why)
{
	bench_count_errors(bc->w, e, 1, "%s: %s", bc->w->b->o->where, why);
	bc->state = CS_FAILED;
	tk_conn_end(bc->conn);
}

static void
rate_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct bconn *bc = arg;

	(void)c;
	if (bc->state != CS_OPEN)
		return;
	if (n == TK_EOF) {
		/* An answer may end with the connection instead of '\n'. */
		if (bc->got > 0)
			op_success(bc);
		else
			op_failed(bc, BENCH_ERR_RESET,
				  "closed without answering");
		return;
	}
	/*
	 * serve --tls answers plain bytes with an alert and a close: no
	 * answer, as when it closed without a word (a reset, as before).
	 */
	if (bc->got == 0 && !tk_conn_is_tls(c) &&
	    tk_tls_looks_like_record(data, (size_t)n)) {
		op_failed(bc, BENCH_ERR_RESET,
			  "the peer answered with TLS: try --tls");
		return;
	}
	bc->got += (uint64_t)n;
	if (memchr(data, '\n', (size_t)n) != NULL)
		op_success(bc);
}

static void
greet_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct bconn *bc = arg;
	const struct bench *b = bc->w->b;
	const char *nl;

	if (bc->state != CS_OPEN)
		return;
	if (n == TK_EOF) {
		if (!bc->greeted && bc->greet_len > 0)
			op_failed(bc, BENCH_ERR_PROTOCOL,
				  "the greeting is not a line (closed before "
				  "its newline)");
		else if (!bc->greeted)
			op_failed(bc, BENCH_ERR_RESET,
				  "closed without a greeting");
		else if (bc->got == 0)
			op_failed(bc, BENCH_ERR_RESET,
				  "closed without answering");
		else
			op_success(bc);
		return;
	}
	if (bc->greeted) {
		bc->got += (uint64_t)n;
		return;
	}
	nl = memchr(data, '\n', (size_t)n);
	if (nl == NULL) {
		bc->greet_len += (uint64_t)n;
		if (bc->greet_len > GREETING_MAX)
			op_failed(bc, BENCH_ERR_PROTOCOL,
				  "the greeting is not a line (no newline in "
				  "64 KiB)");
		return;
	}
	bc->greeted = true;
	bc->got += (uint64_t)(data + n - (nl + 1));
	if (bc->w->phase == PH_MEASURE)
		bc->w->st.bytes_out += b->line_len;
	/* A failure closes c, and its close callback counts the error. */
	(void)tk_conn_write(c, b->line, b->line_len);
}

/* --- the services -------------------------------------------------------- */

static const struct tk_service echo_service = {
	.name = "bench-echo",
	.open = bench_persist_open,
	.data = echo_data,
	.close = bench_persist_closed,
};

static const struct tk_service bulk_service = {
	.name = "bench-bulk",
	.open = bench_persist_open,
	.data = bulk_data,
	.drain = bulk_drain,
	.close = bench_persist_closed,
};

static const struct tk_service idle_service = {
	.name = "bench-idle",
	.open = bench_persist_open,
	.data = idle_data,
	.close = bench_persist_closed,
};

static const struct tk_service rate_service = {
	.name = "bench-rate",
	.open = op_open,
	.data = rate_data,
	.close = bench_op_closed,
};

static const struct tk_service greet_service = {
	.name = "bench-greet",
	.open = op_open,
	.data = greet_data,
	.close = bench_op_closed,
};

const struct tk_service *
bench_service(enum bench_mode m)
{
	switch (m) {
	case BENCH_ECHO:
		return &echo_service;
	case BENCH_BULK:
		return &bulk_service;
	case BENCH_IDLE:
		return &idle_service;
	case BENCH_RATE:
		return &rate_service;
	case BENCH_GREET:
		return &greet_service;
	}
	return &echo_service;
}
