/* bench_int.h: the insides of the bench engine, shared by bench_run.c (threads,
 * the clock of the run), bench_conn.c (opening and closing connections) and
 * bench_modes.c (what each mode says on a connection). */
#ifndef TK_CLI_BENCH_INT_H
#define TK_CLI_BENCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_engine.h"

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
	int tls_err;
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
	uint64_t real_t0; /* t0 as Unix time (ns) */
	struct rusage ru0, ru1;
	bool ru0_taken, ru1_taken, went;
	bool aborted, interrupted;
	struct tk_timer *warm_timer, *live_timer, *start_timer;
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

/* Unix time, for reports and --start-at. */
static inline uint64_t
real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static bool
sending(const struct worker *w)
{
	return w->phase == PH_WARMUP || w->phase == PH_MEASURE;
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

/* bench_run.c: counting, the clock, the end of connections. */
void bench_count_errors(struct worker *w, enum bench_err e, uint64_t n,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void bench_marks(struct worker *w, uint64_t now);
void bench_slot_done(struct bconn *bc);
void bench_end_conn(struct bconn *bc);
void bench_fail_conn(struct bconn *bc);
void bench_check_done(struct worker *w);
void bench_post_control(struct worker *w, tk_work_cb cb);
void bench_control_ready(struct tk_loop *loop, void *arg);
void bench_control_abort(struct tk_loop *loop, void *arg);

/* Cross the marks of the run (bench_marks()) if one is due. */
static inline void
check_marks(struct worker *w, uint64_t now)
{
	if (now >= w->next_mark)
		bench_marks(w, now);
}

/* bench_conn.c: connections that last the run, and one-shot operations. */
void bench_connect_more(struct worker *w);
int bench_persist_open(struct tk_conn *c, void *arg);
void bench_persist_closed(struct tk_conn *c, int err, void *arg);
void bench_start_op(struct bconn *bc);
void bench_on_retry(struct tk_timer *t, void *arg);
void bench_op_closed(struct tk_conn *c, int err, void *arg);

/* bench_modes.c: each mode's protocol. */
const struct tk_service *bench_service(enum bench_mode m);
bool bench_fifo_reserve(struct bconn *bc, uint32_t need);
int bench_echo_send(struct bconn *bc, uint32_t n, uint64_t t);
void bench_on_flush(struct tk_timer *t, void *arg);
void bench_tick_arm(struct worker *w);
void bench_on_tick(struct tk_loop *loop, int fd, unsigned events, void *arg);
void bench_bulk_pump(struct bconn *bc, uint64_t now);

#endif /* TK_CLI_BENCH_INT_H */
