/* bench_run.c: the engine of `tcpkit bench`: worker threads with a loop each,
 * the connection logic of every mode, and the clock of the run. */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define NS_PER_S  UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)

/*
 * The payload pattern: pseudo-random bytes with a prime period.  Message k
 * of a connection takes its payload at an offset that moves by a step with
 * every message and starts elsewhere for every connection, so a byte that
 * comes back in the wrong place, on the wrong connection or in the wrong
 * message does not compare equal.
 */
#define PAT_PERIOD    65521u
#define PAT_MSG_STEP  131u
#define PAT_CONN_STEP 7919u
#define READ_MAX      (64u * 1024) /* the loop's read buffer */

#define SCRATCH_SIZE   (64u * 1024) /* messages composed for one write */
#define CONNECTING_MAX 256u	    /* connects in flight, all threads */
#define DRAIN_MS       1000u	    /* answers awaited after the window */
#define LINGER_MS      1000u	    /* from our FIN to the peer's */
#define HARD_CLOSE_MS  (LINGER_MS + 500u)
#define RETRY_MS       10u    /* rate/greet: pause after a failed connect */
#define OPEN_LOOP_CAP  65536u /* unanswered messages per connection */
#define GREETING_MAX   (64u * 1024)

enum phase {
	PH_CONNECT, /* opening the connections */
	PH_READY,   /* connected; waiting for the other threads */
	PH_WARMUP,
	PH_MEASURE,
	PH_DRAIN,   /* window over: answers in flight may still come */
	PH_CLOSING, /* ending every connection */
	PH_DONE,
};

enum cstate {
	CS_IDLE, /* not started, or between two operations */
	CS_CONNECTING,
	CS_OPEN,
	CS_ENDING, /* our FIN is on its way: no error expected any more */
	CS_FAILED, /* closing after an error already counted */
	CS_DONE,
};

struct worker;

/* A connection of echo, bulk or idle; a client slot of rate or greet. */
struct bconn {
	struct worker *w;
	struct tk_conn *conn;
	uint32_t id;
	uint8_t state;
	bool opened;   /* the current connection reached open */
	bool finished; /* no longer counted in w->active */
	bool first;    /* rate/greet: the slot's first attempt */
	bool rx_bad;   /* echo: the message being received differs */
	bool greeted;  /* greet: the greeting line is in */
	bool queued;   /* rate/greet: waiting in the retry list */
	bool flushing; /* echo: in the list of sends owed this round */
	uint32_t owed; /* echo: messages to send at the end of the round */
	uint32_t rx_pos;
	uint32_t tx_off,
		rx_off; /* echo: pattern offsets of the next messages */
	uint64_t tx_seq, rx_seq; /* echo: messages; bulk: bytes */
	uint64_t scheduled;	 /* open loop: messages due, sent or not */
	uint64_t bad_block;	 /* bulk: the last block counted as mismatch */
	uint64_t *fifo;		 /* send (or scheduled) times, ns */
	uint32_t fifo_cap, fifo_head, fifo_len;
	uint64_t t_begin; /* rate/greet: when the operation began */
	uint64_t ops;	  /* rate/greet: operations begun */
	uint64_t got;	  /* rate/greet: bytes of the answer */
	uint64_t greet_len;
};

struct bench;

struct worker {
	struct bench *b;
	unsigned index;
	pthread_t tid;
	bool started;
	struct tk_loop *loop;
	struct bconn *conns;
	uint32_t nconns;
	uint32_t next_connect;
	uint32_t connecting;
	uint32_t connect_max;
	uint32_t settled; /* connect phase: opened or failed */
	uint32_t open;	  /* connections open now */
	uint32_t active;  /* slots still at work */
	uint32_t live;	  /* connections not closed yet */
	enum phase phase;
	uint64_t t_start, t_end; /* the measured window */
	uint64_t next_sec, next_mark, last_row, window_end;
	uint64_t open_at_end;
	struct tk_timer *mark_timer, *stop_timer, *retry_timer, *flush_timer;
	struct bconn **flushq; /* echo: connections owed sends this round */
	uint32_t nflush;
	uint32_t *retry;
	uint32_t nretry;
	/* Open loop: message j of this thread is due at t0 + j * interval. */
	int tfd;
	bool tfd_watched;
	double interval;
	uint64_t next_j, total_j;
	char *scratch;
	struct bench_stats st;
	uint64_t nerrors;
	struct bench_row *rows;
	size_t nrows, rows_cap;
	uint64_t row_msgs, row_bytes, row_errs;
	int connect_err;
	/* Read by the control thread for the live line. */
	_Atomic uint64_t live_msgs, live_errs, live_conns;
};

/* The run: shared by every thread, written before they start. */
struct bench {
	const struct bench_opts *o;
	const struct tk_addrlist *addrs;
	struct tk_conn_opts copts;
	const struct tk_service *svc;
	char *pattern;
	size_t hdr;	    /* 8: messages carry their sequence number */
	uint32_t period;    /* pattern offsets are taken modulo this */
	uint32_t msg_step;  /* offset advance per message */
	uint32_t conn_step; /* offset of connection i: i * conn_step */
	bool persistent;    /* echo, bulk, idle: connections last the run */
	bool open_loop;
	uint32_t inflight_cap;
	char *line; /* rate/greet: what to send */
	size_t line_len;
	struct worker *workers;
	unsigned nworkers;
	/* Control thread only. */
	struct tk_loop *control;
	unsigned ready, ended, finished;
	uint64_t t0, t_window_start, t_window_end;
	struct rusage ru0, ru1;
	bool ru0_taken, ru1_taken, went;
	bool aborted, interrupted;
	struct tk_timer *warm_timer, *live_timer;
	uint64_t live_msgs, live_errs;
	unsigned live_sec;
	bool live;
	/* Any thread. */
	atomic_bool any_open;
	atomic_uint first_fails;
};

static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

const char *
bench_mode_name(enum bench_mode m)
{
	static const char *const names[] = { "echo", "bulk", "rate", "greet",
					     "idle" };

	return (unsigned)m < 5 ? names[m] : "?";
}

const char *
bench_err_name(enum bench_err e)
{
	static const char *const names[] = { "connect", "reset", "timeout",
					     "mismatch", "protocol" };

	return (unsigned)e < BENCH_NERR ? names[e] : "?";
}

static void count_errors(struct worker *w, enum bench_err e, uint64_t n,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Count n errors of class e; the first one's text is kept for the report. */
static void
count_errors(struct worker *w, enum bench_err e, uint64_t n, const char *fmt,
	     ...)
{
	va_list ap;

	if (n == 0)
		return;
	w->st.errors[e] += n;
	w->nerrors += n;
	if (w->st.first_error[e][0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->st.first_error[e], sizeof(w->st.first_error[e]), fmt, ap);
	va_end(ap);
}

static bool
sending(const struct worker *w)
{
	return w->phase == PH_WARMUP || w->phase == PH_MEASURE;
}

/* Send times: a ring that grows by doubling, never per message. */
static bool
fifo_reserve(struct bconn *bc, uint32_t need)
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

static inline void
fifo_push(struct bconn *bc, uint64_t t)
{
	bc->fifo[(bc->fifo_head + bc->fifo_len) & (bc->fifo_cap - 1)] = t;
	bc->fifo_len++;
}

static inline uint64_t
fifo_pop(struct bconn *bc)
{
	uint64_t t = bc->fifo[bc->fifo_head];

	bc->fifo_head = (bc->fifo_head + 1) & (bc->fifo_cap - 1);
	bc->fifo_len--;
	return t;
}

/*
 * A message (or operation) of bytes came back: count it if the window is
 * open.  Bytes count with their message, so the two always agree.
 */
static inline void
complete(struct worker *w, uint64_t t_sent, uint64_t now, uint64_t bytes)
{
	uint64_t lat = now > t_sent ? now - t_sent : 0;

	if (w->phase == PH_MEASURE) {
		w->st.messages++;
		w->st.bytes_in += bytes;
		tk_hist_record(&w->st.hist, lat);
	} else if (w->phase >= PH_DRAIN) {
		/* Late answers still show in the latency: no stall hides. */
		w->st.drained++;
		tk_hist_record(&w->st.hist, lat);
	}
}

static void post_control(struct worker *w, tk_work_cb cb);
static void control_ended(struct tk_loop *loop, void *arg);
static void control_finished(struct tk_loop *loop, void *arg);
static void control_ready(struct tk_loop *loop, void *arg);
static void control_abort(struct tk_loop *loop, void *arg);

/* --- the clock of the run ------------------------------------------------ */

static void
publish(struct worker *w)
{
	atomic_store_explicit(&w->live_msgs, w->st.messages,
			      memory_order_relaxed);
	atomic_store_explicit(&w->live_errs, w->nerrors, memory_order_relaxed);
	atomic_store_explicit(&w->live_conns, w->open, memory_order_relaxed);
}

static void
take_row(struct worker *w, uint64_t t)
{
	if (w->nrows == w->rows_cap) {
		/* Once a doubling; without memory the series just stops. */
		size_t cap = w->rows_cap ? 2 * w->rows_cap : 64;
		struct bench_row *v = realloc(w->rows, cap * sizeof(*v));

		if (v != NULL) {
			w->rows = v;
			w->rows_cap = cap;
		}
	}
	if (w->nrows < w->rows_cap) {
		struct bench_row *r = &w->rows[w->nrows++];

		r->messages = w->st.messages - w->row_msgs;
		r->bytes = w->st.bytes_in - w->row_bytes;
		r->connections = w->open;
		r->errors = w->nerrors - w->row_errs;
	}
	w->row_msgs = w->st.messages;
	w->row_bytes = w->st.bytes_in;
	w->row_errs = w->nerrors;
	w->last_row = t;
	publish(w);
}

static void
arm_mark(struct worker *w)
{
	uint64_t now = now_ns(), ms;

	if (w->next_mark == UINT64_MAX) {
		tk_timer_stop(w->mark_timer);
		return;
	}
	ms = w->next_mark > now
		     ? (w->next_mark - now + NS_PER_MS - 1) / NS_PER_MS
		     : 0;
	tk_loop_update_time(w->loop);
	tk_timer_start(w->mark_timer, ms, 0);
}

static void end_conn(struct bconn *bc);
static void drain_over(struct tk_timer *t, void *arg);

static bool
in_flight(const struct bconn *bc)
{
	switch (bc->w->b->o->mode) {
	case BENCH_ECHO:
		return bc->fifo_len > 0;
	case BENCH_BULK:
		return bc->tx_seq != bc->rx_seq;
	case BENCH_RATE:
	case BENCH_GREET:
		return bc->state == CS_CONNECTING || bc->state == CS_OPEN;
	default:
		return false;
	}
}

static void
check_done(struct worker *w)
{
	if (w->phase < PH_DRAIN || w->phase == PH_DONE || w->live > 0)
		return;
	w->phase = PH_DONE;
	tk_timer_stop(w->stop_timer);
	tk_timer_stop(w->mark_timer);
	tk_timer_stop(w->retry_timer);
	post_control(w, control_finished);
	tk_loop_stop(w->loop);
}

/*
 * The measured window is over for this thread (deadline, every slot done,
 * or a signal): no new messages; what is in flight gets DRAIN_MS.
 */
static void
window_end(struct worker *w, uint64_t t)
{
	if (!sending(w))
		return;
	if (w->phase == PH_MEASURE && t > w->last_row)
		take_row(w, t);
	w->window_end = t;
	w->phase = PH_DRAIN;
	w->next_mark = UINT64_MAX;
	tk_timer_stop(w->mark_timer);
	publish(w);
	post_control(w, control_ended);
	if (w->tfd_watched) {
		struct itimerspec off = { { 0, 0 }, { 0, 0 } };

		(void)timerfd_settime(w->tfd, 0, &off, NULL);
	}
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct bconn *bc = &w->conns[i];

		if (bc->state == CS_OPEN)
			w->open_at_end++;
		if (bc->state == CS_OPEN && !in_flight(bc))
			end_conn(bc);
	}
	tk_loop_update_time(w->loop);
	tk_timer_start(w->stop_timer, DRAIN_MS, 0);
	check_done(w);
}

static void
begin_window(struct worker *w)
{
	w->phase = PH_MEASURE;
	w->row_errs = w->nerrors;
	w->last_row = w->t_start;
	w->next_sec = w->t_start + NS_PER_S;
}

/* Cross every mark (end of warm-up, each second, deadline) up to now. */
static void
marks(struct worker *w, uint64_t now)
{
	while (now >= w->next_mark) {
		if (w->phase == PH_WARMUP) {
			begin_window(w);
		} else if (w->phase == PH_MEASURE) {
			if (w->next_sec <= w->t_end) {
				take_row(w, w->next_sec);
				w->next_sec += NS_PER_S;
			} else {
				window_end(w, w->t_end);
				return;
			}
		} else {
			return;
		}
		w->next_mark = w->next_sec < w->t_end ? w->next_sec : w->t_end;
	}
}

static inline void
check_marks(struct worker *w, uint64_t now)
{
	if (now >= w->next_mark)
		marks(w, now);
}

static void
on_mark(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;

	(void)t;
	marks(w, now_ns());
	if (sending(w))
		arm_mark(w);
}

/* A slot is through: -n reached, or its connection failed for good. */
static void
slot_done(struct bconn *bc)
{
	struct worker *w = bc->w;

	if (bc->finished)
		return;
	bc->finished = true;
	w->active--;
	if (w->active == 0 && sending(w))
		window_end(w, now_ns());
}

/* Finish gracefully: our FIN after what is pending, then the peer's. */
static void
end_conn(struct bconn *bc)
{
	if (bc->conn == NULL || bc->state != CS_OPEN)
		return;
	bc->state = CS_ENDING;
	tk_conn_end(bc->conn);
}

/* Close after an error that has been counted. */
static void
fail_conn(struct bconn *bc)
{
	if (bc->conn == NULL)
		return;
	bc->state = CS_FAILED;
	tk_conn_close(bc->conn, 0);
}

static void
hard_close(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;

	(void)t;
	for (uint32_t i = 0; i < w->nconns; i++)
		if (w->conns[i].conn != NULL)
			fail_conn(&w->conns[i]);
}

/* The grace after the window is over: what has not come back timed out. */
static void
drain_over(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;
	const struct bench *b = w->b;

	(void)t;
	if (w->phase != PH_DRAIN)
		return;
	w->phase = PH_CLOSING;
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct bconn *bc = &w->conns[i];
		uint64_t n = 0;

		if (bc->conn == NULL || !in_flight(bc))
			continue;
		if (b->o->mode == BENCH_ECHO || b->o->mode == BENCH_BULK)
			n = bc->fifo_len;
		else
			n = 1;
		count_errors(w, BENCH_ERR_TIMEOUT, n,
			     "connection %u: no answer within %ums after the "
			     "end of the run",
			     bc->id, DRAIN_MS);
		if (bc->state == CS_OPEN && b->persistent)
			end_conn(bc);
		else
			fail_conn(bc);
	}
	tk_loop_update_time(w->loop);
	tk_timer_start(w->stop_timer, HARD_CLOSE_MS, 0);
	check_done(w);
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
static int
echo_send(struct bconn *bc, uint32_t n, uint64_t t)
{
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	size_t size = b->o->size, len = 0;
	char *out = w->scratch;
	int err;

	if (!fifo_reserve(bc, bc->fifo_len + n)) {
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
	count_errors(w, BENCH_ERR_RESET, 1,
		     "%s: connection %u closed by the server during the run",
		     w->b->o->where, bc->id);
	bc->state = CS_FAILED;
	tk_conn_end(bc->conn);
	slot_done(bc);
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
			end_conn(bc);
		return;
	}
	if (b->open_loop) {
		if (count != 0 && bc->scheduled == count && bc->fifo_len == 0) {
			end_conn(bc);
			slot_done(bc);
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
		end_conn(bc);
		slot_done(bc);
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
			count_errors(w, BENCH_ERR_MISMATCH, 1,
				     "connection %u: the server sent %zd "
				     "bytes more than it was sent",
				     bc->id, n);
			fail_conn(bc);
			slot_done(bc);
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
			count_errors(w, BENCH_ERR_MISMATCH, 1,
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

static void
on_flush(struct tk_timer *t, void *arg)
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
			(void)echo_send(bc, k, now);
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
		count_errors(w, BENCH_ERR_TIMEOUT, 1,
			     "connection %u: %u messages unanswered; the next "
			     "ones were not sent",
			     bc->id, bc->fifo_len);
	} else if (!fifo_reserve(bc, bc->fifo_len + 1)) {
		count_errors(w, BENCH_ERR_TIMEOUT, 1,
			     "connection %u: out of memory for send times",
			     bc->id);
	} else if (echo_send(bc, 1, t) < 0) {
		return;
	}
	if (w->b->o->count != 0 && bc->scheduled == w->b->o->count &&
	    bc->fifo_len == 0) {
		end_conn(bc);
		slot_done(bc);
	}
}

static inline uint64_t
due(const struct worker *w, uint64_t j)
{
	return w->b->t0 + (uint64_t)((double)j * w->interval);
}

static void
tick_arm(struct worker *w)
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
static void
on_tick(struct tk_loop *loop, int fd, unsigned events, void *arg)
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
		tick_arm(w);
}

/* --- bulk ---------------------------------------------------------------- */

static inline const char *
bulk_pattern(const struct bench *b, const struct bconn *bc, uint64_t off)
{
	return b->pattern + (bc->id * (uint64_t)b->conn_step + off) % b->period;
}

/* Keep the window full, writing only when nothing waits in our buffer. */
static void
bulk_pump(struct bconn *bc, uint64_t now)
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
			count_errors(bc->w, BENCH_ERR_MISMATCH, 1,
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
		count_errors(w, BENCH_ERR_MISMATCH, 1,
			     "connection %u: the server sent more bytes than "
			     "it was sent",
			     bc->id);
		fail_conn(bc);
		slot_done(bc);
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
		end_conn(bc);
		slot_done(bc);
	} else if (!sending(w)) {
		if (bc->rx_seq == bc->tx_seq)
			end_conn(bc);
	} else {
		bulk_pump(bc, now);
	}
}

static void
bulk_drain(struct tk_conn *c, void *arg)
{
	(void)c;
	bulk_pump(arg, now_ns());
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

/* --- connections that last the run (echo, bulk, idle) -------------------- */

static void connect_more(struct worker *w);

static void
maybe_ready(struct worker *w)
{
	if (w->phase == PH_CONNECT && w->settled == w->nconns) {
		w->phase = PH_READY;
		post_control(w, control_ready);
	}
}

static int
persist_open(struct tk_conn *c, void *arg)
{
	struct bconn *bc = arg;
	struct worker *w = bc->w;

	(void)c;
	bc->state = CS_OPEN;
	bc->opened = true;
	w->open++;
	w->connecting--;
	w->settled++;
	w->st.established++;
	atomic_store_explicit(&w->b->any_open, true, memory_order_relaxed);
	if (w->b->o->mode == BENCH_IDLE)
		tk_hist_record(&w->st.hist, now_ns() - bc->t_begin);
	connect_more(w);
	return 0;
}

static void
connect_error(struct worker *w, struct tk_conn *c, int err)
{
	const char *detail = c != NULL ? tk_conn_last_error(c) : "";

	if (w->connect_err == 0)
		w->connect_err = err;
	if (detail[0] != '\0')
		count_errors(w, BENCH_ERR_CONNECT, 1, "%s", detail);
	else
		count_errors(w, BENCH_ERR_CONNECT, 1, "%s: %s", w->b->o->where,
			     tk_strerror(err));
}

static void
persist_closed(struct tk_conn *c, int err, void *arg)
{
	struct bconn *bc = arg;
	struct worker *w = bc->w;
	enum cstate was = bc->state;

	/* Gone before anything else looks: window_end() counts the open. */
	bc->conn = NULL;
	bc->state = CS_DONE;
	w->live--;
	if (!bc->opened) {
		/* A connect failed, or we gave up on it (state CS_FAILED). */
		if (was == CS_CONNECTING)
			connect_error(w, c, err != 0 ? err : -ECONNABORTED);
		w->connecting--;
		w->settled++;
		slot_done(bc);
		connect_more(w);
	} else {
		w->open--;
		if (was == CS_OPEN) {
			count_errors(w, BENCH_ERR_RESET, 1,
				     "%s: connection %u: %s", w->b->o->where,
				     bc->id,
				     tk_strerror(err != 0 ? err : -ECONNRESET));
			slot_done(bc);
		}
	}
	check_done(w);
}

/* Open the next connections, at most connect_max at a time. */
static void
connect_more(struct worker *w)
{
	const struct bench *b = w->b;

	while (w->phase == PH_CONNECT && w->next_connect < w->nconns &&
	       w->connecting < w->connect_max) {
		struct bconn *bc = &w->conns[w->next_connect++];
		int err;

		bc->state = CS_CONNECTING;
		bc->t_begin = now_ns();
		w->connecting++;
		w->live++;
		err = tk_conn_connect(w->loop, b->addrs, &b->copts, b->svc, bc,
				      &bc->conn);
		if (err < 0) {
			bc->conn = NULL;
			bc->state = CS_DONE;
			w->connecting--;
			w->live--;
			w->settled++;
			connect_error(w, NULL, err);
			slot_done(bc);
		}
	}
	maybe_ready(w);
}

/* --- one operation per connection (rate, greet) -------------------------- */

static void start_op(struct bconn *bc);

static void
retry_later(struct bconn *bc)
{
	struct worker *w = bc->w;

	if (bc->queued)
		return;
	bc->queued = true;
	w->retry[w->nretry++] = (uint32_t)(bc - w->conns);
	if (!tk_timer_is_active(w->retry_timer)) {
		tk_loop_update_time(w->loop);
		tk_timer_start(w->retry_timer, RETRY_MS, 0);
	}
}

static void
on_retry(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;
	uint32_t n = w->nretry;

	(void)t;
	w->nretry = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct bconn *bc = &w->conns[w->retry[i]];

		bc->queued = false;
		start_op(bc);
	}
	check_done(w);
}

static void
start_op(struct bconn *bc)
{
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	int err;

	if (!sending(w) || (b->o->count != 0 && bc->ops == b->o->count)) {
		bc->state = CS_DONE;
		slot_done(bc);
		return;
	}
	bc->ops++;
	bc->got = 0;
	bc->greet_len = 0;
	bc->greeted = false;
	bc->opened = false;
	bc->state = CS_CONNECTING;
	bc->t_begin = now_ns();
	w->live++;
	err = tk_conn_connect(w->loop, b->addrs, &b->copts, b->svc, bc,
			      &bc->conn);
	if (err < 0) {
		bc->conn = NULL;
		bc->state = CS_IDLE;
		w->live--;
		connect_error(w, NULL, err);
		retry_later(bc);
	}
}

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
	end_conn(bc);
}

/*
 * The operation failed: e is BENCH_ERR_RESET when the server closed where
 * an answer was due (it may have died), BENCH_ERR_PROTOCOL when what it
 * sent does not fit the protocol.
 */
static void
op_failed(struct bconn *bc, enum bench_err e, const char *why)
{
	count_errors(bc->w, e, 1, "%s: %s", bc->w->b->o->where, why);
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
	(void)tk_conn_write(c, b->line, b->line_len);
}

static void
op_closed(struct tk_conn *c, int err, void *arg)
{
	struct bconn *bc = arg;
	struct worker *w = bc->w;
	bool failed_connect = bc->state == CS_CONNECTING;

	bc->conn = NULL;
	w->live--;
	if (bc->opened)
		w->open--;
	if (failed_connect) {
		connect_error(w, c, err != 0 ? err : -ECONNABORTED);
		if (bc->first && !atomic_load(&w->b->any_open) &&
		    atomic_fetch_add(&w->b->first_fails, 1) + 1 ==
			    w->b->o->connections)
			post_control(w, control_abort);
	} else if (bc->state == CS_OPEN) {
		count_errors(w, BENCH_ERR_RESET, 1, "%s: %s", w->b->o->where,
			     tk_strerror(err != 0 ? err : -ECONNRESET));
	}
	bc->first = false;
	bc->state = CS_IDLE;
	if (failed_connect)
		retry_later(bc);
	else
		start_op(bc);
	check_done(w);
}

/* --- the services -------------------------------------------------------- */

static const struct tk_service echo_service = {
	.name = "bench-echo",
	.open = persist_open,
	.data = echo_data,
	.close = persist_closed,
};

static const struct tk_service bulk_service = {
	.name = "bench-bulk",
	.open = persist_open,
	.data = bulk_data,
	.drain = bulk_drain,
	.close = persist_closed,
};

static const struct tk_service idle_service = {
	.name = "bench-idle",
	.open = persist_open,
	.data = idle_data,
	.close = persist_closed,
};

static const struct tk_service rate_service = {
	.name = "bench-rate",
	.open = op_open,
	.data = rate_data,
	.close = op_closed,
};

static const struct tk_service greet_service = {
	.name = "bench-greet",
	.open = op_open,
	.data = greet_data,
	.close = op_closed,
};

/* --- the worker thread and its orders from the control thread ------------ */

static void
post_control(struct worker *w, tk_work_cb cb)
{
	/*
	 * XXX: a post can fail only without memory; the run would then wait
	 * for its hard deadline.  Nothing better is possible here.
	 */
	(void)tk_loop_post(w->b->control, cb, w);
}

static void
worker_go(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;
	const struct bench *b = w->b;
	const struct bench_opts *o = b->o;
	uint64_t now;

	(void)loop;
	if (w->phase != PH_READY)
		return;
	w->t_start = b->t0 + o->warmup_ms * NS_PER_MS;
	w->t_end = w->t_start + o->duration_ms * NS_PER_MS;
	w->row_errs = w->nerrors;
	if (o->warmup_ms > 0) {
		w->phase = PH_WARMUP;
		w->next_mark = w->t_start;
	} else {
		begin_window(w);
		w->next_mark = w->next_sec < w->t_end ? w->next_sec : w->t_end;
	}
	arm_mark(w);
	now = now_ns();
	switch (o->mode) {
	case BENCH_ECHO:
		if (b->open_loop) {
			if (tk_loop_watch(w->loop, w->tfd, TK_READABLE, on_tick,
					  w) == 0) {
				w->tfd_watched = true;
				tick_arm(w);
			}
			break;
		}
		for (uint32_t i = 0; i < w->nconns; i++) {
			struct bconn *bc = &w->conns[i];
			uint64_t k = o->depth;

			if (o->count != 0 && o->count < k)
				k = o->count;
			/* A stamp each: thousands of sends take a while. */
			if (bc->state == CS_OPEN)
				(void)echo_send(bc, (uint32_t)k, now_ns());
		}
		break;
	case BENCH_BULK:
		for (uint32_t i = 0; i < w->nconns; i++)
			if (w->conns[i].state == CS_OPEN)
				bulk_pump(&w->conns[i], now);
		break;
	case BENCH_RATE:
	case BENCH_GREET:
		for (uint32_t i = 0; i < w->nconns; i++)
			start_op(&w->conns[i]);
		break;
	case BENCH_IDLE:
		break;
	}
	if (w->active == 0)
		window_end(w, now_ns());
}

/* Stop at once: a signal, or no connection could be made anywhere. */
static void
worker_stop(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;

	(void)loop;
	switch (w->phase) {
	case PH_WARMUP:
	case PH_MEASURE:
		window_end(w, now_ns());
		break;
	case PH_DRAIN:
		drain_over(w->stop_timer, w);
		break;
	case PH_DONE:
		break;
	default: /* connecting, ready, or already closing: close all now */
		w->phase = PH_CLOSING;
		w->next_connect = w->nconns;
		hard_close(NULL, w);
		check_done(w);
		break;
	}
}

static void
on_stop_timer(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;

	if (w->phase == PH_DRAIN)
		drain_over(t, w);
	else
		hard_close(t, w);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	const struct bench *b = w->b;

	/* A timer wakes within a microsecond, not within 50 (the default). */
	if (b->open_loop)
		(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	tk_loop_update_time(w->loop);
	if (b->persistent) {
		connect_more(w);
	} else {
		w->phase = PH_READY;
		post_control(w, control_ready);
	}
	(void)tk_loop_run(w->loop);
	return NULL;
}

/* --- the control thread -------------------------------------------------- */

static void
each_worker(struct bench *b, tk_work_cb cb)
{
	for (unsigned i = 0; i < b->nworkers; i++)
		(void)tk_loop_post(b->workers[i].loop, cb, &b->workers[i]);
}

static void
take_ru0(struct tk_timer *t, void *arg)
{
	struct bench *b = arg;

	(void)t;
	if (b->ended < b->nworkers && !b->ru0_taken) {
		getrusage(RUSAGE_SELF, &b->ru0);
		b->ru0_taken = true;
	}
}

/* The live line comes 100ms after each second's row, when it is known. */
static void
arm_live(struct bench *b, uint64_t now)
{
	uint64_t at = b->t_window_start + (b->live_sec + 1) * NS_PER_S +
		      100 * NS_PER_MS;

	tk_loop_update_time(b->control);
	tk_timer_start(b->live_timer,
		       at > now ? (at - now + NS_PER_MS - 1) / NS_PER_MS : 0,
		       0);
}

static void
on_live(struct tk_timer *t, void *arg)
{
	struct bench *b = arg;
	uint64_t msgs = 0, errs = 0, conns = 0, now = now_ns();

	(void)t;
	if (b->ended == b->nworkers)
		return;
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		msgs += atomic_load_explicit(&w->live_msgs,
					     memory_order_relaxed);
		errs += atomic_load_explicit(&w->live_errs,
					     memory_order_relaxed);
		conns += atomic_load_explicit(&w->live_conns,
					      memory_order_relaxed);
	}
	b->live_sec++;
	fprintf(stderr, "%4us  %llu %s/s  %llu connections open  %llu errors\n",
		b->live_sec, (unsigned long long)(msgs - b->live_msgs),
		b->o->mode == BENCH_RATE || b->o->mode == BENCH_GREET
			? "connections"
			: "messages",
		(unsigned long long)conns, (unsigned long long)(errs));
	b->live_msgs = msgs;
	b->live_errs = errs;
	arm_live(b, now);
}

static void
control_ready(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;

	(void)loop;
	if (++b->ready < b->nworkers || b->aborted || b->interrupted)
		return;
	if (b->persistent && !atomic_load(&b->any_open)) {
		b->aborted = true;
		each_worker(b, worker_stop);
		return;
	}
	b->went = true;
	b->t0 = now_ns();
	b->t_window_start = b->t0 + b->o->warmup_ms * NS_PER_MS;
	tk_loop_update_time(b->control);
	if (b->o->warmup_ms == 0)
		take_ru0(NULL, b);
	else
		tk_timer_start(b->warm_timer, b->o->warmup_ms, 0);
	if (b->live)
		arm_live(b, b->t0);
	each_worker(b, worker_go);
}

static void
control_ended(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;

	(void)loop;
	if (w->window_end > b->t_window_end)
		b->t_window_end = w->window_end;
	if (++b->ended < b->nworkers)
		return;
	getrusage(RUSAGE_SELF, &b->ru1);
	b->ru1_taken = true;
	tk_timer_stop(b->live_timer);
}

static void
control_finished(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;

	if (++b->finished == b->nworkers)
		tk_loop_stop(loop);
}

static void
control_abort(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;

	(void)loop;
	if (b->aborted || atomic_load(&b->any_open))
		return;
	b->aborted = true;
	each_worker(b, worker_stop);
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	struct bench *b = arg;

	(void)loop;
	(void)signo;
	/* The first stops the run and reports; the next closes at once. */
	b->interrupted = true;
	each_worker(b, worker_stop);
}

/* --- setting up, running, gathering -------------------------------------- */

/*
 * One period of xorshift64* bytes (the same on every run), then copies of
 * it: byte i is byte i % period, so a stream offset maps to the buffer
 * from anywhere in the period, for as long as the buffer lasts.
 */
static void
fill_pattern(char *p, size_t n, size_t period)
{
	uint64_t x = UINT64_C(0x9e3779b97f4a7c15);

	for (size_t i = 0; i < n; i++) {
		if (i >= period) {
			p[i] = p[i - period];
			continue;
		}
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		p[i] = (char)((x * UINT64_C(0x2545f4914f6cdd1d)) >> 56);
	}
}

static int
setup_bench(struct bench *b, const struct bench_opts *o,
	    const struct tk_addrlist *addrs)
{
	size_t need;

	b->o = o;
	b->addrs = addrs;
	b->persistent = o->mode == BENCH_ECHO || o->mode == BENCH_BULK ||
			o->mode == BENCH_IDLE;
	b->open_loop = o->mode == BENCH_ECHO && o->rate > 0;
	tk_conn_opts_init(&b->copts);
	b->copts.connect_timeout_ms = o->connect_timeout_ms;
	b->copts.linger_ms = LINGER_MS;
	/*
	 * Never stop reading because our own output waits: the server may
	 * be blocked writing to us, and the two would wait for each other.
	 * What we queue is bounded by -d, the window or the open-loop cap.
	 */
	need = TK_DEFAULT_MAX_OUTPUT;
	if (o->mode == BENCH_ECHO && (size_t)o->depth * o->size > need)
		need = (size_t)o->depth * o->size;
	if (o->mode == BENCH_BULK && o->window + o->size > need)
		need = o->window + o->size;
	b->copts.max_output = need;
	b->copts.max_pending = need;
	b->inflight_cap = OPEN_LOOP_CAP;
	if (o->size > 0 && need / o->size < b->inflight_cap)
		b->inflight_cap = (uint32_t)(need / o->size);
	if (b->inflight_cap == 0)
		b->inflight_cap = 1;

	switch (o->mode) {
	case BENCH_ECHO:
		b->svc = &echo_service;
		break;
	case BENCH_BULK:
		b->svc = &bulk_service;
		break;
	case BENCH_IDLE:
		b->svc = &idle_service;
		break;
	case BENCH_RATE:
		b->svc = &rate_service;
		break;
	case BENCH_GREET:
		b->svc = &greet_service;
		break;
	}
	if (o->mode == BENCH_RATE || o->mode == BENCH_GREET) {
		b->line = o->message;
		b->line_len = o->message_len;
	}
	if (o->mode == BENCH_ECHO && o->message != NULL) {
		/* A custom payload is sent as it is: no sequence number. */
		b->pattern = malloc(o->message_len);
		if (b->pattern == NULL)
			return -ENOMEM;
		memcpy(b->pattern, o->message, o->message_len);
		b->period = 1;
		return 0;
	}
	if (o->mode == BENCH_ECHO || o->mode == BENCH_BULK) {
		size_t len =
			PAT_PERIOD + (o->size > READ_MAX ? o->size : READ_MAX);

		b->pattern = malloc(len);
		if (b->pattern == NULL)
			return -ENOMEM;
		fill_pattern(b->pattern, len, PAT_PERIOD);
		b->period = PAT_PERIOD;
		b->msg_step = PAT_MSG_STEP;
		b->conn_step = PAT_CONN_STEP;
		/* Below 8 bytes, the moving pattern alone tells messages. */
		b->hdr = o->mode == BENCH_ECHO && o->size >= 8 ? 8 : 0;
	}
	return 0;
}

static int
setup_worker(struct bench *b, struct worker *w, unsigned index,
	     uint32_t first_id)
{
	const struct bench_opts *o = b->o;
	uint32_t n = o->connections / b->nworkers +
		     (index < o->connections % b->nworkers ? 1 : 0);

	w->b = b;
	w->index = index;
	w->tfd = -1;
	w->nconns = n;
	w->active = n;
	w->connect_max = CONNECTING_MAX / b->nworkers;
	if (w->connect_max == 0)
		w->connect_max = 1;
	w->next_mark = UINT64_MAX;
	tk_hist_init(&w->st.hist);
	w->loop = tk_loop_new();
	if (w->loop == NULL)
		return -errno;
	w->conns = calloc(n, sizeof(*w->conns));
	w->retry = calloc(n, sizeof(*w->retry));
	w->mark_timer = tk_timer_new(w->loop, on_mark, w);
	w->stop_timer = tk_timer_new(w->loop, on_stop_timer, w);
	w->retry_timer = tk_timer_new(w->loop, on_retry, w);
	w->flush_timer = tk_timer_new(w->loop, on_flush, w);
	w->flushq = calloc(n, sizeof(*w->flushq));
	if (w->conns == NULL || w->retry == NULL || w->flushq == NULL ||
	    w->flush_timer == NULL || w->mark_timer == NULL ||
	    w->stop_timer == NULL || w->retry_timer == NULL)
		return -ENOMEM;
	if (o->mode == BENCH_ECHO) {
		w->scratch = malloc(SCRATCH_SIZE);
		if (w->scratch == NULL)
			return -ENOMEM;
	}
	if (b->open_loop) {
		w->tfd = timerfd_create(CLOCK_MONOTONIC,
					TFD_NONBLOCK | TFD_CLOEXEC);
		if (w->tfd < 0)
			return -errno;
		/* This thread's share of --rate, evenly spaced. */
		w->interval =
			1e9 * (double)o->connections / (o->rate * (double)n);
		w->total_j = o->count != 0 ? o->count * n : UINT64_MAX;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct bconn *bc = &w->conns[i];

		bc->w = w;
		bc->id = first_id + i;
		bc->first = true;
		bc->bad_block = UINT64_MAX;
		bc->tx_off = bc->rx_off =
			b->period > 1
				? (uint32_t)(((uint64_t)bc->id * b->conn_step) %
					     b->period)
				: 0;
		if (o->mode == BENCH_ECHO && !b->open_loop &&
		    !fifo_reserve(bc, o->depth))
			return -ENOMEM;
		if (o->mode == BENCH_BULK &&
		    !fifo_reserve(bc, (uint32_t)(o->window / o->size) + 1))
			return -ENOMEM;
	}
	return 0;
}

static void
free_worker(struct worker *w)
{
	if (w->tfd_watched)
		tk_loop_unwatch(w->loop, w->tfd);
	if (w->tfd >= 0)
		close(w->tfd);
	tk_timer_free(w->mark_timer);
	tk_timer_free(w->stop_timer);
	tk_timer_free(w->retry_timer);
	tk_timer_free(w->flush_timer);
	for (uint32_t i = 0; w->conns != NULL && i < w->nconns; i++)
		free(w->conns[i].fifo);
	tk_loop_free(w->loop); /* runs what is left of the closes */
	free(w->conns);
	free(w->retry);
	free(w->flushq);
	free(w->rows);
	free(w->scratch);
}

static uint64_t
tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * NS_PER_S + (uint64_t)tv->tv_usec * 1000;
}

static void
gather(struct bench *b, struct bench_result *r)
{
	struct bench_stats *t = &r->total;

	tk_hist_init(&t->hist);
	r->interrupted = b->interrupted;
	if (b->t_window_end > b->t_window_start && b->went)
		r->window_ns = b->t_window_end - b->t_window_start;
	if (b->ru0_taken && b->ru1_taken) {
		uint64_t u0 = tv_ns(&b->ru0.ru_utime),
			 u1 = tv_ns(&b->ru1.ru_utime);
		uint64_t s0 = tv_ns(&b->ru0.ru_stime),
			 s1 = tv_ns(&b->ru1.ru_stime);

		r->cpu_user_ns = u1 > u0 ? u1 - u0 : 0;
		r->cpu_sys_ns = s1 > s0 ? s1 - s0 : 0;
	}
	r->nrows = (size_t)((r->window_ns + NS_PER_S - 1) / NS_PER_S);
	if (r->nrows > 0) {
		r->rows = calloc(r->nrows, sizeof(*r->rows));
		if (r->rows == NULL)
			r->nrows = 0;
		r->last_row_ns = r->window_ns - (r->nrows - 1) * NS_PER_S;
	}
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		t->messages += w->st.messages;
		t->drained += w->st.drained;
		t->bytes_out += w->st.bytes_out;
		t->bytes_in += w->st.bytes_in;
		t->established += w->st.established;
		for (int e = 0; e < BENCH_NERR; e++) {
			t->errors[e] += w->st.errors[e];
			if (t->first_error[e][0] == '\0')
				memcpy(t->first_error[e], w->st.first_error[e],
				       sizeof(t->first_error[e]));
		}
		tk_hist_merge(&t->hist, &w->st.hist);
		r->open_at_end += w->open_at_end;
		if (r->connect_err == 0)
			r->connect_err = w->connect_err;
		for (size_t k = 0; k < w->nrows && k < r->nrows; k++) {
			r->rows[k].messages += w->rows[k].messages;
			r->rows[k].bytes += w->rows[k].bytes;
			r->rows[k].connections += w->rows[k].connections;
			r->rows[k].errors += w->rows[k].errors;
		}
	}
	r->no_connection =
		b->aborted || (t->established == 0 && !b->interrupted);
	if (r->no_connection && r->connect_err == 0)
		r->connect_err = -ECONNREFUSED;
}

int
bench_run(const struct bench_opts *o, const struct tk_addrlist *addrs,
	  struct bench_result *r)
{
	struct bench *b;
	unsigned started = 0;
	uint32_t id = 0;
	int err;

	memset(r, 0, sizeof(*r));
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->nworkers = o->threads;
	b->live = !o->quiet && isatty(STDERR_FILENO);
	if ((err = setup_bench(b, o, addrs)) < 0)
		goto out_free;
	b->control = tk_loop_new();
	if (b->control == NULL) {
		err = -errno;
		goto out_free;
	}
	b->warm_timer = tk_timer_new(b->control, take_ru0, b);
	b->live_timer = tk_timer_new(b->control, on_live, b);
	b->workers = calloc(b->nworkers, sizeof(*b->workers));
	if (b->warm_timer == NULL || b->live_timer == NULL ||
	    b->workers == NULL) {
		err = -ENOMEM;
		goto out_free_workers;
	}
	/* Before the threads exist, so that they inherit the blocked mask. */
	if ((err = tk_loop_signal(b->control, SIGINT, on_signal, b)) < 0 ||
	    (err = tk_loop_signal(b->control, SIGTERM, on_signal, b)) < 0)
		goto out_free_workers;
	for (unsigned i = 0; i < b->nworkers; i++) {
		if ((err = setup_worker(b, &b->workers[i], i, id)) < 0)
			goto out_free_workers;
		id += b->workers[i].nconns;
	}
	for (; started < b->nworkers; started++) {
		struct worker *w = &b->workers[started];

		err = -pthread_create(&w->tid, NULL, worker_main, w);
		if (err < 0)
			break;
		w->started = true;
	}
	if (started < b->nworkers) {
		/* Those that run are told to stop, then joined. */
		b->nworkers = started;
		b->interrupted = true;
		each_worker(b, worker_stop);
	}
	if (started > 0)
		(void)tk_loop_run(b->control);
	for (unsigned i = 0; i < started; i++)
		pthread_join(b->workers[i].tid, NULL);
	if (err == 0)
		gather(b, r);

out_free_workers:
	for (unsigned i = 0; b->workers != NULL && i < o->threads; i++)
		if (b->workers[i].b != NULL)
			free_worker(&b->workers[i]);
	free(b->workers);
	tk_timer_free(b->warm_timer);
	tk_timer_free(b->live_timer);
	tk_loop_free(b->control);
out_free:
	free(b->pattern);
	free(b);
	return err;
}

void
bench_result_free(struct bench_result *r)
{
	free(r->rows);
	r->rows = NULL;
	r->nrows = 0;
}
