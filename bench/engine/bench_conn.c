/* bench_conn.c: `tcpkit bench` opens and closes connections: those that
 * last the run (echo, bulk, idle) and one per operation (rate, greet). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_int.h"

/* --- connections that last the run (echo, bulk, idle) -------------------- */

static void
maybe_ready(struct worker *w)
{
	if (w->phase == PH_CONNECT && w->settled == w->nconns) {
		w->phase = PH_READY;
		bench_post_control(w, bench_control_ready);
	}
}

int
bench_persist_open(struct tk_conn *c, void *arg)
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
	bench_connect_more(w);
	return 0;
}

/* A TLS handshake that failed or stalled, not the TCP connect. */
static bool
is_tls_error(int err)
{
	return (err <= -3300 && err > -3400) || err == TK_EHANDSHAKETIMEDOUT;
}

static void
connect_error(struct worker *w, struct tk_conn *c, int err)
{
	const char *detail = c != NULL ? tk_conn_last_error(c) : "";
	char why[TK_TLS_ERRLEN + 64];

	if (c != NULL && is_tls_error(err)) {
		/* The server answered: its handshake, not its port, failed. */
		if (w->tls_err == 0)
			w->tls_err = err;
		if (w->b->o->tls_why != NULL)
			w->b->o->tls_why(c, err, why, sizeof(why));
		else if (detail[0] != '\0')
			snprintf(why, sizeof(why), "%s (%s)", tk_strerror(err),
				 detail);
		else
			snprintf(why, sizeof(why), "%s", tk_strerror(err));
		bench_count_errors(w, BENCH_ERR_TLS, 1, "%s", why);
		return;
	}
	if (w->connect_err == 0)
		w->connect_err = err;
	if (detail[0] != '\0')
		bench_count_errors(w, BENCH_ERR_CONNECT, 1, "%s", detail);
	else
		bench_count_errors(w, BENCH_ERR_CONNECT, 1, "%s: %s",
				   w->b->o->where, tk_strerror(err));
}

void
bench_persist_closed(struct tk_conn *c, int err, void *arg)
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
		bench_slot_done(bc);
		bench_connect_more(w);
	} else {
		w->open--;
		if (was == CS_OPEN) {
			bench_count_errors(
				w, BENCH_ERR_RESET, 1, "%s: connection %u: %s",
				w->b->o->where, bc->id,
				tk_strerror(err != 0 ? err : -ECONNRESET));
			bench_slot_done(bc);
		}
	}
	bench_check_done(w);
}

/* Connect bc: to the addresses, or through the proxy to the name. */
static int
dial(struct worker *w, struct bconn *bc)
{
	const struct bench *b = w->b;

	if (b->copts.proxy != NULL)
		return tk_conn_connect_host(w->loop, b->o->host, b->o->port,
					    &b->copts, b->svc, bc, &bc->conn);
	return tk_conn_connect(w->loop, b->addrs, &b->copts, b->svc, bc,
			       &bc->conn);
}

/* Open the next connections, at most connect_max at a time. */
void
bench_connect_more(struct worker *w)
{
	while (w->phase == PH_CONNECT && w->next_connect < w->nconns &&
	       w->connecting < w->connect_max) {
		struct bconn *bc = &w->conns[w->next_connect++];
		int err;

		bc->state = CS_CONNECTING;
		bc->t_begin = now_ns();
		w->connecting++;
		w->live++;
		err = dial(w, bc);
		if (err < 0) {
			bc->conn = NULL;
			bc->state = CS_DONE;
			w->connecting--;
			w->live--;
			w->settled++;
			connect_error(w, NULL, err);
			bench_slot_done(bc);
		}
	}
	maybe_ready(w);
}

/* --- one operation per connection (rate, greet) -------------------------- */

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

void
bench_on_retry(struct tk_timer *t, void *arg)
{
	struct worker *w = arg;
	uint32_t n = w->nretry;

	(void)t;
	w->nretry = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct bconn *bc = &w->conns[w->retry[i]];

		bc->queued = false;
		bench_start_op(bc);
	}
	bench_check_done(w);
}

void
bench_start_op(struct bconn *bc)
{
	struct worker *w = bc->w;
	const struct bench *b = w->b;
	int err;

	if (!sending(w) || (b->o->count != 0 && bc->ops == b->o->count)) {
		bc->state = CS_DONE;
		bench_slot_done(bc);
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
	err = dial(w, bc);
	if (err < 0) {
		bc->conn = NULL;
		bc->state = CS_IDLE;
		w->live--;
		connect_error(w, NULL, err);
		retry_later(bc);
	}
}

void
bench_op_closed(struct tk_conn *c, int err, void *arg)
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
			bench_post_control(w, bench_control_abort);
	} else if (bc->state == CS_OPEN) {
		bench_count_errors(w, BENCH_ERR_RESET, 1, "%s: %s",
				   w->b->o->where,
				   tk_strerror(err != 0 ? err : -ECONNRESET));
	}
	bc->first = false;
	bc->state = CS_IDLE;
	if (failed_connect)
		retry_later(bc);
	else
		bench_start_op(bc);
	bench_check_done(w);
}
