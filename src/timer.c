/* timer.c: timers kept in a binary min-heap ordered by deadline, then start
 * order. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static bool
before(const struct tk_timer *a, const struct tk_timer *b)
{
	if (a->due != b->due)
		return a->due < b->due;
	return a->seq < b->seq;
}

static void
place(struct tk__heap *h, size_t i, struct tk_timer *t)
{
	h->v[i] = t;
	t->index = i;
}

static void
sift_up(struct tk__heap *h, size_t i)
{
	struct tk_timer *t = h->v[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!before(t, h->v[parent]))
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, t);
}

static void
sift_down(struct tk__heap *h, size_t i)
{
	struct tk_timer *t = h->v[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= h->n)
			break;
		if (child + 1 < h->n && before(h->v[child + 1], h->v[child]))
			child++;
		if (!before(h->v[child], t))
			break;
		place(h, i, h->v[child]);
		i = child;
	}
	place(h, i, t);
}

int
tk__heap_push(struct tk__heap *h, struct tk_timer *t)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct tk_timer **v = realloc(h->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n] = t;
	t->index = h->n++;
	sift_up(h, t->index);
	return 0;
}

void
tk__heap_remove(struct tk__heap *h, struct tk_timer *t)
{
	size_t i = t->index;
	struct tk_timer *last;

	if (i == TK__HEAP_NONE)
		return;
	t->index = TK__HEAP_NONE;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	/* The moved element may belong above or below its new place. */
	if (i > 0 && before(last, h->v[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

struct tk_timer *
tk__heap_min(const struct tk__heap *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

void
tk__heap_free(struct tk__heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

void
tk__timer_init(struct tk_timer *t, struct tk_loop *loop, tk_timer_cb cb,
	       void *arg)
{
	*t = (struct tk_timer){
		.loop = loop, .cb = cb, .arg = arg, .index = TK__HEAP_NONE
	};
}

struct tk_timer *
tk__timer_alloc(struct tk_loop *loop, tk_timer_cb cb, void *arg)
{
	struct tk_timer *t = malloc(sizeof(*t));

	if (t != NULL)
		tk__timer_init(t, loop, cb, arg);
	return t;
}

int
tk_timer_new(struct tk_loop *loop, tk_timer_cb cb, void *arg,
	     struct tk_timer **out)
{
	struct tk_timer *t;

	*out = NULL;
	if (loop == NULL || cb == NULL)
		return -EINVAL;
	t = tk__timer_alloc(loop, cb, arg);
	if (t == NULL)
		return -ENOMEM;
	tk__loop_add_timer(loop, &t->node);
	*out = t;
	return 0;
}

int
tk_timer_start(struct tk_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
	struct tk__heap *h = tk__loop_heap(t->loop);

	tk__heap_remove(h, t);
	t->due = tk_loop_now(t->loop) + timeout_ms;
	t->repeat = repeat_ms;
	t->seq = tk__loop_next_seq(t->loop);
	/* Out of memory growing the heap: the timer stays stopped. */
	return tk__heap_push(h, t);
}

void
tk_timer_stop(struct tk_timer *t)
{
	/* A stopped timer may outlive its loop: touch the loop only if armed.
	 */
	if (t->index != TK__HEAP_NONE)
		tk__heap_remove(tk__loop_heap(t->loop), t);
}

bool
tk_timer_is_active(const struct tk_timer *t)
{
	return t->index != TK__HEAP_NONE;
}

void
tk_timer_free(struct tk_timer *t)
{
	if (t == NULL)
		return;
	tk_timer_stop(t);
	/* Off the loop's list (tk_loop_free() empties it: no loop needed). */
	tk__lnode_del(&t->node);
	free(t);
}

void
tk__timers_run(struct tk_loop *loop)
{
	struct tk__heap *h = tk__loop_heap(loop);
	uint64_t now = tk_loop_now(loop);
	struct tk_timer *t;

	/*
	 * Timers started by a callback in this round are due at now + timeout
	 * >= now + 0; one started with timeout 0 would run in the same round
	 * and could starve I/O, so stop at the first one started after we
	 * began.
	 */
	uint64_t seq_limit = tk__loop_next_seq(loop);

	while ((t = tk__heap_min(h)) != NULL && t->due <= now &&
	       t->seq < seq_limit) {
		tk__heap_remove(h, t);
		if (t->repeat != 0) {
			t->due = now + t->repeat;
			t->seq = tk__loop_next_seq(loop);
			(void)tk__heap_push(h, t);
		}
		/* The callback may stop, restart or free t. */
		t->cb(t, t->arg);
	}
}
