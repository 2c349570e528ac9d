/* loop.c: the event loop core: fd table, timers, signal callbacks,
 * deferred work and cross-thread posts, over one backend (backend.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"

/* Events handled per round. */
#define LOOP_MAX_EVENTS 256

struct watcher {
	tk_io_cb cb;
	void *arg;
	unsigned events;
	uint32_t gen; /* 0: not watched */
	bool own;     /* the library's, for a handle (tk__loop_watch_own()) */
};

struct post {
	tk_work_cb cb;
	void (*drop)(void *arg); /* tk_loop_free() before it ran; or NULL */
	void *arg;
	struct post *next;
};

struct tk_loop {
	struct tk__backend *be; /* the poller, wakeups, signals */
	struct {
		tk_signal_cb cb;
		void *arg;
	} signals[NSIG];

	struct watcher *fds;
	size_t nfds;
	uint32_t gen;

	struct tk__heap timers;
	uint64_t seq;
	uint64_t now;

	struct tk__defer *defer_head, **defer_tail;

	pthread_mutex_t post_lock;
	struct post *posts, **posts_tail;
	atomic_bool stop;

	char *rbuf;

	/* Live handles: connections not yet closed, tk_timer_new() timers. */
	struct tk__lnode conns, timer_list;
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
tk_loop_new(struct tk_loop **out)
{
	struct tk_loop *loop = calloc(1, sizeof(*loop));
	int err;

	*out = NULL;
	if (loop == NULL)
		return -ENOMEM;
	loop->defer_tail = &loop->defer_head;
	loop->posts_tail = &loop->posts;
	loop->conns.next = loop->conns.prev = &loop->conns;
	loop->timer_list.next = loop->timer_list.prev = &loop->timer_list;
	pthread_mutex_init(&loop->post_lock, NULL);
	loop->now = mono_ms();
	err = tk__backend_new(&loop->be);
	if (err < 0) {
		pthread_mutex_destroy(&loop->post_lock);
		free(loop);
		return err;
	}
	*out = loop;
	return 0;
}

static void
lnode_add(struct tk__lnode *head, struct tk__lnode *n)
{
	n->next = head;
	n->prev = head->prev;
	head->prev->next = n;
	head->prev = n;
}

void
tk__loop_add_conn(struct tk_loop *loop, struct tk__lnode *n)
{
	lnode_add(&loop->conns, n);
}

void
tk__loop_add_timer(struct tk_loop *loop, struct tk__lnode *n)
{
	lnode_add(&loop->timer_list, n);
}

void
tk__lnode_del(struct tk__lnode *n)
{
	if (n->next == NULL)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
}

size_t
tk_loop_walk(struct tk_loop *loop, tk_walk_cb cb, void *arg)
{
	struct tk__lnode *n, *next;
	size_t count = 0;

	/*
	 * The next node is taken before the callback, which may close or free
	 * the handle it is given (a closed connection leaves the list).
	 */
	for (n = loop->conns.next; n != &loop->conns; n = next) {
		struct tk_handle h = { .type = TK_HANDLE_CONN, .fd = -1 };

		next = n->next;
		h.conn = tk__conn_of_node(n);
		h.fd = tk_conn_fd(h.conn);
		count++;
		if (cb != NULL)
			cb(loop, &h, arg);
	}
	for (n = loop->timer_list.next; n != &loop->timer_list; n = next) {
		struct tk_handle h = { .type = TK_HANDLE_TIMER, .fd = -1 };

		next = n->next;
		h.timer = (struct tk_timer *)((char *)n -
					      offsetof(struct tk_timer, node));
		h.arg = h.timer->arg;
		count++;
		if (cb != NULL)
			cb(loop, &h, arg);
	}
	/* By index: a callback may watch a new fd (the table moves). */
	for (size_t fd = 0; fd < loop->nfds; fd++) {
		struct tk_handle h = { .type = TK_HANDLE_FD, .fd = (int)fd };

		if (loop->fds[fd].gen == 0 || loop->fds[fd].own)
			continue;
		h.arg = loop->fds[fd].arg;
		count++;
		if (cb != NULL)
			cb(loop, &h, arg);
	}
	return count;
}

int
tk_loop_close(struct tk_loop *loop)
{
	if (loop == NULL)
		return 0;
	/* Closed connections finish (close callbacks) before the count. */
	tk__loop_run_deferred(loop);
	if (tk_loop_walk(loop, NULL, NULL) != 0)
		return -EBUSY;
	tk_loop_free(loop);
	return 0;
}

void
tk_loop_free(struct tk_loop *loop)
{
	struct post *p, *next;

	if (loop == NULL)
		return;
	/*
	 * A connection still open would lose its socket and its memory, and
	 * its owner would never hear of it: close it, and its close callback
	 * runs now, while the loop is whole.  Bounded: a close callback that
	 * opens connections again and again is not served for ever.
	 */
	for (int round = 0; round < 8 && loop->conns.next != &loop->conns;
	     round++) {
		while (loop->conns.next != &loop->conns)
			tk_conn_close(tk__conn_of_node(loop->conns.next),
				      -ECANCELED);
		tk__loop_run_deferred(loop);
	}
	tk__loop_run_deferred(loop);
	/* Timers outlive the loop (their owners free them): off the list. */
	while (loop->timer_list.next != &loop->timer_list)
		tk__lnode_del(loop->timer_list.next);
	for (p = loop->posts; p != NULL; p = next) {
		next = p->next;
		if (p->drop != NULL)
			p->drop(p->arg);
		free(p);
	}
	/* Timers still armed belong to their owners; only the heap goes. */
	for (size_t i = 0; i < loop->timers.n; i++)
		loop->timers.v[i]->index = TK__HEAP_NONE;
	tk__heap_free(&loop->timers);
	tk__backend_free(loop->be);
	pthread_mutex_destroy(&loop->post_lock);
	free(loop->fds);
	free(loop->rbuf);
	free(loop);
}

const char *
tk_backend_name(void)
{
	return tk__backend_name();
}

uint64_t
tk_loop_now(const struct tk_loop *loop)
{
	return loop->now;
}

void
tk_loop_update_time(struct tk_loop *loop)
{
	loop->now = mono_ms();
}

struct tk__heap *
tk__loop_heap(struct tk_loop *loop)
{
	return &loop->timers;
}

uint64_t
tk__loop_next_seq(struct tk_loop *loop)
{
	return loop->seq++;
}

char *
tk__loop_read_buf(struct tk_loop *loop, size_t *size)
{
	if (loop->rbuf == NULL)
		loop->rbuf = malloc(TK__LOOP_READ_BUF);
	*size = TK__LOOP_READ_BUF;
	return loop->rbuf;
}

/* The fd table grows to the highest fd watched; fds are small integers. */
static int
grow_fds(struct tk_loop *loop, int fd)
{
	size_t n = loop->nfds ? loop->nfds : 64;
	struct watcher *w;

	while (n <= (size_t)fd)
		n *= 2;
	w = realloc(loop->fds, n * sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	memset(w + loop->nfds, 0, (n - loop->nfds) * sizeof(*w));
	loop->fds = w;
	loop->nfds = n;
	return 0;
}

static uint64_t
tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int
tk_loop_watch(struct tk_loop *loop, int fd, unsigned events, tk_io_cb cb,
	      void *arg)
{
	struct watcher *w;
	int err;

	if (fd < 0 || cb == NULL)
		return -EINVAL;
	if ((size_t)fd >= loop->nfds && (err = grow_fds(loop, fd)) < 0)
		return err;
	w = &loop->fds[fd];
	if (w->gen != 0)
		return -EEXIST;
	/* Generation 0 means "free"; skip it when the counter wraps. */
	if (++loop->gen == 0)
		loop->gen = 1;
	err = tk__backend_add(loop->be, fd, events, tag(fd, loop->gen));
	if (err < 0)
		return err;
	w->cb = cb;
	w->arg = arg;
	w->events = events;
	w->gen = loop->gen;
	w->own = false;
	return 0;
}

int
tk__loop_watch_own(struct tk_loop *loop, int fd, unsigned events, tk_io_cb cb,
		   void *arg)
{
	int err = tk_loop_watch(loop, fd, events, cb, arg);

	if (err == 0)
		loop->fds[fd].own = true;
	return err;
}

int
tk_loop_modify(struct tk_loop *loop, int fd, unsigned events)
{
	struct watcher *w;
	int err;

	if (fd < 0 || (size_t)fd >= loop->nfds || loop->fds[fd].gen == 0)
		return -ENOENT;
	w = &loop->fds[fd];
	if (w->events == events)
		return 0;
	err = tk__backend_mod(loop->be, fd, events, tag(fd, w->gen));
	if (err == 0)
		w->events = events;
	return err;
}

void
tk_loop_unwatch(struct tk_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nfds || loop->fds[fd].gen == 0)
		return;
	(void)tk__backend_del(loop->be, fd);
	memset(&loop->fds[fd], 0, sizeof(loop->fds[fd]));
}

void
tk__loop_forget(struct tk_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nfds || loop->fds[fd].gen == 0)
		return;
	tk__backend_forget(loop->be, fd);
	memset(&loop->fds[fd], 0, sizeof(loop->fds[fd]));
}

void
tk__loop_defer(struct tk_loop *loop, struct tk__defer *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->next = NULL;
	*loop->defer_tail = d;
	loop->defer_tail = &d->next;
}

void
tk__loop_run_deferred(struct tk_loop *loop)
{
	struct tk__defer *d;

	while ((d = loop->defer_head) != NULL) {
		loop->defer_head = d->next;
		if (loop->defer_head == NULL)
			loop->defer_tail = &loop->defer_head;
		d->queued = false;
		d->cb(d); /* may free d, or queue more */
	}
}

/* A post made ahead (internal.h); the loop frees it as any other. */
struct tk__post {
	struct post p;
};

struct tk__post *
tk__post_new(void)
{
	return malloc(sizeof(struct tk__post));
}

void
tk__loop_post_ready(struct tk_loop *loop, struct tk__post *node, tk_work_cb cb,
		    void (*drop)(void *), void *arg)
{
	struct post *p = &node->p;

	p->cb = cb;
	p->drop = drop;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&loop->post_lock);
	*loop->posts_tail = p;
	loop->posts_tail = &p->next;
	pthread_mutex_unlock(&loop->post_lock);
	tk__backend_wake(loop->be);
}

int
tk__loop_post_drop(struct tk_loop *loop, tk_work_cb cb, void (*drop)(void *),
		   void *arg)
{
	struct tk__post *node = tk__post_new();

	if (node == NULL)
		return -ENOMEM;
	tk__loop_post_ready(loop, node, cb, drop, arg);
	return 0;
}

int
tk_loop_post(struct tk_loop *loop, tk_work_cb cb, void *arg)
{
	return tk__loop_post_drop(loop, cb, NULL, arg);
}

void
tk_loop_stop(struct tk_loop *loop)
{
	atomic_store(&loop->stop, true);
	tk__backend_wake(loop->be);
}

void
tk__loop_run_posts(struct tk_loop *loop)
{
	struct post *p, *next;

	pthread_mutex_lock(&loop->post_lock);
	p = loop->posts;
	loop->posts = NULL;
	loop->posts_tail = &loop->posts;
	pthread_mutex_unlock(&loop->post_lock);
	for (; p != NULL; p = next) {
		next = p->next;
		p->cb(loop, p->arg);
		free(p);
	}
}

int
tk_loop_signal(struct tk_loop *loop, int signo, tk_signal_cb cb, void *arg)
{
	int err;

	if (signo <= 0 || signo >= NSIG || cb == NULL)
		return -EINVAL;
	if ((err = tk__backend_signal(loop->be, signo)) < 0)
		return err;
	loop->signals[signo].cb = cb;
	loop->signals[signo].arg = arg;
	return 0;
}

/* The backend's own events: a wakeup (posts, a stop) or a signal. */
static void
own_event(struct tk_loop *loop, uint64_t data)
{
	int signo;

	if (data == TK__EV_WAKE) {
		tk__loop_run_posts(loop);
		return;
	}
	signo = (int)data;
	if (signo > 0 && signo < NSIG && loop->signals[signo].cb != NULL)
		loop->signals[signo].cb(loop, signo, loop->signals[signo].arg);
}

static int
next_timeout(struct tk_loop *loop, int timeout_ms)
{
	struct tk_timer *t = tk__heap_min(&loop->timers);
	uint64_t wait;

	if (loop->defer_head != NULL)
		return 0;
	if (t == NULL)
		return timeout_ms;
	wait = t->due > loop->now ? t->due - loop->now : 0;
	if (wait > INT32_MAX)
		wait = INT32_MAX;
	if (timeout_ms >= 0 && (uint64_t)timeout_ms < wait)
		return timeout_ms;
	return (int)wait;
}

int
tk_loop_run_once(struct tk_loop *loop, int timeout_ms)
{
	struct tk__event evs[LOOP_MAX_EVENTS];
	int n;

	tk__loop_run_deferred(loop);
	tk_loop_update_time(loop);
	n = tk__backend_wait(loop->be, evs, LOOP_MAX_EVENTS,
			     next_timeout(loop, timeout_ms));
	if (n < 0)
		return n;
	tk_loop_update_time(loop);
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data;
		uint32_t gen = (uint32_t)(evs[i].data >> 32);
		struct watcher *w;
		unsigned ev;

		if (TK__EV_IS_OWN(evs[i].data)) {
			own_event(loop, evs[i].data);
			tk__loop_run_deferred(loop);
			continue;
		}
		/*
		 * An earlier callback of this round may have unwatched fd, or
		 * closed it and watched a new fd of the same number: the
		 * generation tells.
		 */
		if ((size_t)fd >= loop->nfds || loop->fds[fd].gen != gen)
			continue;
		w = &loop->fds[fd];
		ev = evs[i].events;
		if (ev & TK_HANGUP)
			ev |= w->events;
		ev &= w->events | TK_HANGUP;
		if (ev != 0)
			w->cb(loop, fd, ev, w->arg);
		tk__loop_run_deferred(loop);
	}
	tk__timers_run(loop);
	tk__loop_run_deferred(loop);
	return 0;
}

int
tk_loop_run(struct tk_loop *loop)
{
	int err = 0;

	while (!atomic_load(&loop->stop)) {
		err = tk_loop_run_once(loop, -1);
		if (err < 0)
			break;
	}
	atomic_store(&loop->stop, false);
	return err;
}
