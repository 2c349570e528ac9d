/* bench_run.c: the engine of `tcpkit bench`: worker threads with a loop each,
 * the control thread, and the clock of the run (warm-up, window, drain). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bench_int.h"

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
	static const char *const names[] = { "connect",	 "reset",    "timeout",
					     "mismatch", "protocol", "tls" };

	return (unsigned)e < BENCH_NERR ? names[e] : "?";
}

/* Count n errors of class e; the first one's text is kept for the report. */
void
bench_count_errors(struct worker *w, enum bench_err e, uint64_t n,
		   const char *fmt, ...)
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

static void control_ended(struct tk_loop *loop, void *arg);
static void control_finished(struct tk_loop *loop, void *arg);

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

void
bench_check_done(struct worker *w)
{
	if (w->phase < PH_DRAIN || w->phase == PH_DONE || w->live > 0)
		return;
	w->phase = PH_DONE;
	tk_timer_stop(w->stop_timer);
	tk_timer_stop(w->mark_timer);
	tk_timer_stop(w->retry_timer);
	bench_post_control(w, control_finished);
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
	bench_post_control(w, control_ended);
	if (w->tfd_watched) {
		struct itimerspec off = { { 0, 0 }, { 0, 0 } };

		(void)timerfd_settime(w->tfd, 0, &off, NULL);
	}
	for (uint32_t i = 0; i < w->nconns; i++) {
		struct bconn *bc = &w->conns[i];

		if (bc->state == CS_OPEN)
			w->open_at_end++;
		if (bc->state == CS_OPEN && !in_flight(bc))
			bench_end_conn(bc);
	}
	tk_loop_update_time(w->loop);
	tk_timer_start(w->stop_timer, DRAIN_MS, 0);
	bench_check_done(w);
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
void
bench_marks(struct worker *w, uint64_t now)
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

static void
on_mark(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;

	(void)t;
	bench_marks(w, now_ns());
	if (sending(w))
		arm_mark(w);
}

/* A slot is through: -n reached, or its connection failed for good. */
void
bench_slot_done(struct bconn *bc)
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
void
bench_end_conn(struct bconn *bc)
{
	if (bc->conn == NULL || bc->state != CS_OPEN)
		return;
	bc->state = CS_ENDING;
	tk_conn_end(bc->conn);
}

/* Close after an error that has been counted. */
void
bench_fail_conn(struct bconn *bc)
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
			bench_fail_conn(&w->conns[i]);
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
		bench_count_errors(
			w, BENCH_ERR_TIMEOUT, n,
			"connection %u: no answer within %ums after the "
			"end of the run",
			bc->id, DRAIN_MS);
		if (bc->state == CS_OPEN && b->persistent)
			bench_end_conn(bc);
		else
			bench_fail_conn(bc);
	}
	tk_loop_update_time(w->loop);
	tk_timer_start(w->stop_timer, HARD_CLOSE_MS, 0);
	bench_check_done(w);
}

/* --- the worker thread and its orders from the control thread ------------ */

void
bench_post_control(struct worker *w, tk_work_cb cb)
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
			if (tk_loop_watch(w->loop, w->tfd, TK_READABLE,
					  bench_on_tick, w) == 0) {
				w->tfd_watched = true;
				bench_tick_arm(w);
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
				(void)bench_echo_send(bc, (uint32_t)k,
						      now_ns());
		}
		break;
	case BENCH_BULK:
		for (uint32_t i = 0; i < w->nconns; i++)
			if (w->conns[i].state == CS_OPEN)
				bench_bulk_pump(&w->conns[i], now);
		break;
	case BENCH_RATE:
	case BENCH_GREET:
		for (uint32_t i = 0; i < w->nconns; i++)
			bench_start_op(&w->conns[i]);
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
		bench_check_done(w);
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
		bench_connect_more(w);
	} else {
		w->phase = PH_READY;
		bench_post_control(w, bench_control_ready);
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
	b->o->progress(
		&(struct bench_progress){
			.second = b->live_sec,
			.per_second = msgs - b->live_msgs,
			.connections_open = conns,
			.errors = errs,
			.per_connection = b->o->mode == BENCH_RATE ||
					  b->o->mode == BENCH_GREET,
		},
		b->o->progress_arg);
	b->live_msgs = msgs;
	b->live_errs = errs;
	arm_live(b, now);
}

static void go(struct tk_timer *t, void *arg);

void
bench_control_ready(struct tk_loop *loop, void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	uint64_t now;

	(void)loop;
	if (++b->ready < b->nworkers || b->aborted || b->interrupted)
		return;
	if (b->persistent && !atomic_load(&b->any_open)) {
		b->aborted = true;
		each_worker(b, worker_stop);
		return;
	}
	now = real_ns();
	if (b->o->start_at_ns > now) {
		tk_loop_update_time(b->control);
		tk_timer_start(b->start_timer,
			       (b->o->start_at_ns - now + NS_PER_MS - 1) /
				       NS_PER_MS,
			       0);
		return;
	}
	go(NULL, b);
}

/* Every connection is open (and --start-at has come): the run begins. */
static void
go(struct tk_timer *t, void *arg)
{
	struct bench *b = arg;

	(void)t;
	if (b->aborted || b->interrupted)
		return;
	b->went = true;
	b->t0 = now_ns();
	b->real_t0 = real_ns();
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

void
bench_control_abort(struct tk_loop *loop, void *arg)
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
	/* One context for all threads: built once, before the run. */
	b->copts.tls = o->tls;
	/* A UNIX target has no host: TLS over it checks the name or pin. */
	b->copts.servername = o->servername != NULL ? o->servername
			      : o->is_unix	    ? NULL
						    : o->host;
	b->copts.proxy = o->has_proxy ? &o->proxy : NULL;
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

	b->svc = bench_service(o->mode);
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
	int err;
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
	if ((err = tk_loop_new(&w->loop)) < 0)
		return err;
	w->conns = calloc(n, sizeof(*w->conns));
	w->retry = calloc(n, sizeof(*w->retry));
	w->flushq = calloc(n, sizeof(*w->flushq));
	if (w->conns == NULL || w->retry == NULL || w->flushq == NULL)
		return -ENOMEM;
	if ((err = tk_timer_new(w->loop, on_mark, w, &w->mark_timer)) < 0 ||
	    (err = tk_timer_new(w->loop, on_stop_timer, w, &w->stop_timer)) <
		    0 ||
	    (err = tk_timer_new(w->loop, bench_on_retry, w, &w->retry_timer)) <
		    0 ||
	    (err = tk_timer_new(w->loop, bench_on_flush, w, &w->flush_timer)) <
		    0)
		return err;
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
		    !bench_fifo_reserve(bc, o->depth))
			return -ENOMEM;
		if (o->mode == BENCH_BULK &&
		    !bench_fifo_reserve(bc,
					(uint32_t)(o->window / o->size) + 1))
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
	if (b->went)
		r->start_us = (b->real_t0 + (b->t_window_start - b->t0)) / 1000;
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
		if (r->tls_err == 0)
			r->tls_err = w->tls_err;
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
	b->live = o->progress != NULL;
	if ((err = setup_bench(b, o, addrs)) < 0)
		goto out_free;
	if ((err = tk_loop_new(&b->control)) < 0)
		goto out_free;
	if ((err = tk_timer_new(b->control, take_ru0, b, &b->warm_timer)) < 0 ||
	    (err = tk_timer_new(b->control, on_live, b, &b->live_timer)) < 0 ||
	    (err = tk_timer_new(b->control, go, b, &b->start_timer)) < 0)
		goto out_free_workers;
	b->workers = calloc(b->nworkers, sizeof(*b->workers));
	if (b->workers == NULL) {
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
	tk_timer_free(b->start_timer);
	/*
	 * As serve does: a second SIGINT/SIGTERM still pending (timeout(1)
	 * sends two) would kill us with 130 once tk_loop_free() unblocks it,
	 * before the summary of a run that ended well.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
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
