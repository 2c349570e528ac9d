/* test_timer.c: the timer min-heap (internal) and the public timers. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(heap, .timeout = 30);
TestSuite(timer, .timeout = 30);

/* The heap's order, restated: deadline first, then start order. */
static bool
earlier(const struct tk_timer *a, const struct tk_timer *b)
{
	if (a->due != b->due)
		return a->due < b->due;
	return a->seq < b->seq;
}

/* Every parent precedes its children and every index is right. */
static void
check_heap(const struct tk__heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		cr_assert_eq(h->v[i]->index, i, "index of slot %zu is %zu", i,
			     h->v[i]->index);
		if (i > 0)
			cr_assert(!earlier(h->v[i], h->v[(i - 1) / 2]),
				  "heap order broken at %zu", i);
	}
}

/* The earliest of the timers still in the heap, by brute force. */
static struct tk_timer *
brute_min(struct tk_timer *t, size_t n)
{
	struct tk_timer *m = NULL;

	for (size_t i = 0; i < n; i++)
		if (t[i].index != TK__HEAP_NONE &&
		    (m == NULL || earlier(&t[i], m)))
			m = &t[i];
	return m;
}

#define NT 600

Test(heap, random_deadlines_with_ties)
{
	static struct tk_timer t[NT];
	struct tk__heap h = { 0 };
	uint64_t last_due = 0, last_seq = 0;

	srand(12345);
	for (size_t i = 0; i < NT; i++)
		t[i].index = TK__HEAP_NONE;
	for (size_t i = 0; i < NT; i++) {
		t[i].due = (uint64_t)(rand() % 40); /* many equal deadlines */
		t[i].seq = i;
		cr_assert_eq(tk__heap_push(&h, &t[i]), 0);
		check_heap(&h);
		cr_assert_eq(tk__heap_min(&h), brute_min(t, NT));
	}
	cr_assert_eq(h.n, NT);

	/* Take out a third from anywhere: middle, leaves, the root. */
	for (size_t k = 0; k < NT / 3; k++) {
		size_t i = (size_t)rand() % NT;

		if (k % 7 == 0)
			i = (size_t)(h.v[0] - t); /* the root */
		else if (k % 7 == 1)
			i = (size_t)(h.v[h.n - 1] - t); /* the last slot */
		tk__heap_remove(&h, &t[i]);
		cr_assert_eq(t[i].index, TK__HEAP_NONE);
		tk__heap_remove(&h, &t[i]); /* twice: a no-op */
		check_heap(&h);
		cr_assert_eq(tk__heap_min(&h), brute_min(t, NT));
	}

	/* Drain: deadlines never go back, equal ones come out FIFO. */
	for (size_t k = 0; h.n > 0; k++) {
		struct tk_timer *m = tk__heap_min(&h);

		cr_assert_eq(m, brute_min(t, NT));
		if (k > 0) {
			cr_assert_geq(m->due, last_due);
			if (m->due == last_due)
				cr_assert_gt(m->seq, last_seq,
					     "equal deadlines out of order");
		}
		last_due = m->due;
		last_seq = m->seq;
		tk__heap_remove(&h, m);
		check_heap(&h);
	}
	cr_assert_null(tk__heap_min(&h));
	tk__heap_free(&h);
	cr_assert_null(h.v);
}

Test(heap, all_equal_deadlines_are_fifo)
{
	static struct tk_timer t[300];
	struct tk__heap h = { 0 };

	for (size_t i = 0; i < 300; i++) {
		t[i].due = 7;
		t[i].seq = i;
		cr_assert_eq(tk__heap_push(&h, &t[i]), 0);
	}
	/* Removing from the middle must not disturb the FIFO order. */
	for (size_t i = 1; i < 300; i += 3)
		tk__heap_remove(&h, &t[i]);
	check_heap(&h);
	for (size_t i = 0; i < 300; i++) {
		if (i % 3 == 1)
			continue;
		cr_assert_eq(tk__heap_min(&h), &t[i], "expected timer %zu", i);
		tk__heap_remove(&h, &t[i]);
	}
	cr_assert_eq(h.n, 0);
	tk__heap_free(&h);
}

Test(heap, interleaved_push_and_remove)
{
	static struct tk_timer t[NT];
	struct tk__heap h = { 0 };
	uint64_t seq = 0;

	srand(777);
	for (size_t i = 0; i < NT; i++)
		t[i].index = TK__HEAP_NONE;
	for (int round = 0; round < 5000; round++) {
		struct tk_timer *x = &t[(size_t)rand() % NT];

		if (x->index == TK__HEAP_NONE) {
			x->due = (uint64_t)(rand() % 100);
			x->seq = seq++;
			cr_assert_eq(tk__heap_push(&h, x), 0);
		} else {
			tk__heap_remove(&h, x);
		}
		check_heap(&h);
		cr_assert_eq(tk__heap_min(&h), brute_min(t, NT));
	}
	tk__heap_free(&h);
}

/* Public timers: a log of which fired, in what order and which round. */
struct fired {
	int order[32];
	int n;
	int round; /* the test's count of loop rounds */
	int round_of[32];
	struct tk_timer *timers[8];
	int count[8];
};

static struct fired *the_log;

static void
note(struct tk_timer *t, void *arg)
{
	int id = (int)(intptr_t)arg;

	(void)t;
	the_log->round_of[id] = the_log->round;
	if (the_log->n < 32)
		the_log->order[the_log->n++] = id;
	the_log->count[id]++;
}

Test(timer, fire_in_deadline_then_start_order)
{
	struct tk_loop *loop = t_loop_new();
	struct fired log = { 0 };
	uint64_t t0;
	/* Timeouts per timer id; equal ones must keep their start order. */
	static const uint64_t after[] = { 30, 10, 20, 10, 0, 20 };
	static const int expect[] = { 4, 1, 3, 2, 5, 0 };

	the_log = &log;
	cr_assert_not_null(loop);
	for (int i = 0; i < 6; i++) {
		log.timers[i] = t_timer_new(loop, note, (void *)(intptr_t)i);
		cr_assert_not_null(log.timers[i]);
		cr_assert(!tk_timer_is_active(log.timers[i]));
	}
	/*
	 * Deadlines count from the loop's cached clock: refresh it, then one
	 * reading for all (equal timeouts make equal deadlines).
	 */
	t0 = t_now_ms();
	tk_loop_update_time(loop);
	for (int i = 0; i < 6; i++)
		tk_timer_start(log.timers[i], after[i], 0);
	for (int i = 0; i < 6; i++)
		cr_assert(tk_timer_is_active(log.timers[i]));
	RUN_UNTIL(loop, 2000, log.n == 6);
	cr_assert_geq(t_now_ms() - t0, 30, "the 30 ms timer fired early");
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(log.order[i], expect[i], "position %d: %d", i,
			     log.order[i]);
		cr_assert(!tk_timer_is_active(log.timers[i]));
	}
	/* One-shot: nothing more. */
	t_run_for(loop, 40);
	cr_assert_eq(log.n, 6);
	for (int i = 0; i < 6; i++)
		tk_timer_free(log.timers[i]);
	tk_loop_free(loop);
}

static void
count_then_stop(struct tk_timer *t, void *arg)
{
	int *n = arg;

	if (++*n == 5) {
		tk_timer_stop(t);
		cr_assert(!tk_timer_is_active(t));
	} else {
		cr_assert(tk_timer_is_active(t), "a repeating timer is armed");
	}
}

Test(timer, repeat_until_stopped)
{
	struct tk_loop *loop = t_loop_new();
	int n = 0;
	struct tk_timer *t = t_timer_new(loop, count_then_stop, &n);
	uint64_t t0 = t_now_ms();

	tk_loop_update_time(loop);
	tk_timer_start(t, 5, 10);
	RUN_UNTIL(loop, 3000, n == 5);
	/* 5 + 4 * 10 ms at the least. */
	cr_assert_geq(t_now_ms() - t0, 45);
	t_run_for(loop, 50);
	cr_assert_eq(n, 5, "fired after stop");
	tk_timer_free(t);
	tk_loop_free(loop);
}

static void
bump(struct tk_timer *t, void *arg)
{
	(void)t;
	++*(int *)arg;
}

Test(timer, stop_before_due)
{
	struct tk_loop *loop = t_loop_new();
	int n = 0;
	struct tk_timer *t = t_timer_new(loop, bump, &n);

	tk_timer_start(t, 10, 0);
	tk_timer_stop(t);
	cr_assert(!tk_timer_is_active(t));
	tk_timer_stop(t); /* stopping a stopped timer is harmless */
	t_run_for(loop, 40);
	cr_assert_eq(n, 0);
	tk_timer_free(t);
	tk_timer_free(NULL);
	tk_loop_free(loop);
}

Test(timer, restart_moves_the_deadline)
{
	struct tk_loop *loop = t_loop_new();
	int n = 0;
	struct tk_timer *t = t_timer_new(loop, bump, &n);
	uint64_t t0;

	/* Later: from 10 ms to 60 ms. */
	tk_timer_start(t, 10, 0);
	t0 = t_now_ms();
	tk_loop_update_time(loop);
	tk_timer_start(t, 60, 0);
	RUN_UNTIL(loop, 2000, n == 1);
	cr_assert_geq(t_now_ms() - t0, 60);
	/* Sooner: from an hour to 5 ms. */
	tk_timer_start(t, 3600 * 1000, 0);
	tk_timer_start(t, 5, 0);
	RUN_UNTIL(loop, 2000, n == 2);
	/* A restart is one timer: it fires once. */
	t_run_for(loop, 30);
	cr_assert_eq(n, 2);
	cr_assert_eq(tk__loop_heap(loop)->n, 0);
	tk_timer_free(t);
	tk_loop_free(loop);
}

struct selfish {
	int fired;
	int limit;
	bool free_it;
	struct tk_timer **slot;
};

static void
restart_or_free(struct tk_timer *t, void *arg)
{
	struct selfish *s = arg;

	s->fired++;
	if (s->free_it) {
		tk_timer_free(t); /* from its own callback */
		*s->slot = NULL;
	} else if (s->fired < s->limit) {
		tk_timer_start(t, 1, 0);
	}
}

Test(timer, restart_from_own_callback)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_timer *t = NULL;
	struct selfish s = { .limit = 4, .slot = &t };

	t = t_timer_new(loop, restart_or_free, &s);
	tk_timer_start(t, 1, 0);
	RUN_UNTIL(loop, 2000, s.fired == 4);
	t_run_for(loop, 20);
	cr_assert_eq(s.fired, 4);
	cr_assert(!tk_timer_is_active(t));
	tk_timer_free(t);
	tk_loop_free(loop);
}

Test(timer, free_from_own_callback)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_timer *one = NULL, *rep = NULL, *other;
	struct selfish s1 = { .free_it = true, .slot = &one };
	struct selfish s2 = { .free_it = true, .slot = &rep };
	int n = 0;

	one = t_timer_new(loop, restart_or_free, &s1);
	rep = t_timer_new(loop, restart_or_free, &s2);
	other = t_timer_new(loop, bump, &n);
	tk_timer_start(one, 2, 0);
	tk_timer_start(rep, 2, 1); /* repeating: re-armed before the call */
	tk_timer_start(other, 2, 0);
	RUN_UNTIL(loop, 2000, one == NULL && rep == NULL && n == 1);
	t_run_for(loop, 20);
	cr_assert_eq(s1.fired, 1);
	cr_assert_eq(s2.fired, 1);
	cr_assert_eq(tk__loop_heap(loop)->n, 0);
	tk_timer_free(other);
	tk_loop_free(loop);
}

/* Timer 0 starts timer 1 with timeout 0 from its callback. */
static void
start_other_now(struct tk_timer *t, void *arg)
{
	note(t, arg);
	tk_timer_start(the_log->timers[1], 0, 0);
}

Test(timer, zero_timeout_from_callback_waits_a_round)
{
	struct tk_loop *loop = t_loop_new();
	struct fired log = { 0 };

	the_log = &log;
	log.timers[0] = t_timer_new(loop, start_other_now, (void *)0);
	log.timers[1] = t_timer_new(loop, note, (void *)1);
	tk_timer_start(log.timers[0], 1, 0);
	while (log.n < 2) {
		log.round++;
		cr_assert_lt(log.round, 1000);
		cr_assert_eq(tk_loop_run_once(loop, 1000), 0);
	}
	cr_assert_eq(log.order[0], 0);
	cr_assert_eq(log.order[1], 1);
	cr_assert_gt(
		log.round_of[1], log.round_of[0],
		"a 0 ms timer started by a callback ran in the same round");
	tk_timer_free(log.timers[0]);
	tk_timer_free(log.timers[1]);
	tk_loop_free(loop);
}

/* A timer that re-arms itself with 0 ms runs once per round, no more. */
static void
rearm_now(struct tk_timer *t, void *arg)
{
	note(t, arg);
	tk_timer_start(t, 0, 0);
}

Test(timer, self_rearm_zero_runs_once_per_round)
{
	struct tk_loop *loop = t_loop_new();
	struct fired log = { 0 };

	the_log = &log;
	log.timers[2] = t_timer_new(loop, rearm_now, (void *)2);
	tk_timer_start(log.timers[2], 0, 0);
	for (log.round = 1; log.round <= 10; log.round++) {
		cr_assert_eq(tk_loop_run_once(loop, 1000), 0);
		cr_assert_eq(log.count[2], log.round,
			     "round %d ran it %d times", log.round,
			     log.count[2]);
	}
	tk_timer_free(log.timers[2]);
	tk_loop_free(loop);
}

Test(timer, loop_clock_is_monotonic)
{
	struct tk_loop *loop = t_loop_new();
	uint64_t a, b;

	a = tk_loop_now(loop);
	t_run_for(loop, 15);
	tk_loop_update_time(loop);
	b = tk_loop_now(loop);
	cr_assert_geq(b - a, 14);
	cr_assert_lt(b - a, 5000);
	tk_loop_free(loop);
}

/*
 * A timer still armed when its loop is freed stays its owner's: the loop
 * lets go of it (no callback, no double free), the owner frees it after.
 */
Test(timer, loop_freed_with_timer_armed)
{
	struct tk_loop *loop = t_loop_new();
	int n = 0;
	struct tk_timer *t = t_timer_new(loop, bump, &n);

	tk_timer_start(t, 1000, 0);
	tk_loop_free(loop);
	cr_assert(!tk_timer_is_active(t));
	cr_assert_eq(n, 0);
	tk_timer_free(t);
}

/* A timer needs a loop and a callback; a failure leaves *out NULL. */
Test(timer, new_refuses_what_it_cannot_run)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_timer *t = (struct tk_timer *)loop;

	cr_assert_eq(tk_timer_new(loop, NULL, NULL, &t), -EINVAL);
	cr_assert_null(t);
	t = (struct tk_timer *)loop;
	cr_assert_eq(tk_timer_new(NULL, bump, NULL, &t), -EINVAL);
	cr_assert_null(t);
	tk_loop_free(loop);
}
