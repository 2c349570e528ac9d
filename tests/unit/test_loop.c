/* test_loop.c: the event loop: watchers, rounds, posts, stop, signals. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(loop, .timeout = 30);

/* What a watcher saw. */
struct seen {
	int calls;
	unsigned events; /* of the last call */
	unsigned all;	 /* union of every call's events */
	int fd;
};

static void
record(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct seen *s = arg;

	(void)loop;
	s->calls++;
	s->events = events;
	s->all |= events;
	s->fd = fd;
}

static void
socketpair_nb(int sv[2])
{
	cr_assert(socketpair(AF_UNIX,
			     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
			     sv) == 0);
}

Test(loop, new_and_free)
{
	struct tk_loop *loop = t_loop_new();

	cr_assert_not_null(loop);
	cr_assert_gt(tk_loop_now(loop), 0);
	tk_loop_free(loop);
	tk_loop_free(NULL);
}

Test(loop, watch_modify_unwatch)
{
	struct tk_loop *loop = t_loop_new();
	struct seen s = { 0 };
	int sv[2];

	socketpair_nb(sv);
	/* Writable at once; readable only after the other end writes. */
	cr_assert_eq(tk_loop_watch(loop, sv[0], TK_READABLE, record, &s), 0);
	t_run_for(loop, 20);
	cr_assert_eq(s.calls, 0, "readable with nothing to read");
	cr_assert_eq(write(sv[1], "x", 1), 1);
	RUN_UNTIL(loop, 1000, s.calls > 0);
	cr_assert_eq(s.events, TK_READABLE);
	cr_assert_eq(s.fd, sv[0]);

	/* Level-triggered: still readable while the byte is there. */
	s.calls = 0;
	cr_assert_eq(tk_loop_run_once(loop, 1000), 0);
	cr_assert_eq(s.calls, 1);

	/* Now writable only. */
	cr_assert_eq(tk_loop_modify(loop, sv[0], TK_WRITABLE), 0);
	s.calls = 0;
	RUN_UNTIL(loop, 1000, s.calls > 0);
	cr_assert_eq(s.events, TK_WRITABLE);

	/* Both. */
	cr_assert_eq(tk_loop_modify(loop, sv[0], TK_READABLE | TK_WRITABLE), 0);
	RUN_UNTIL(loop, 1000, s.events == (TK_READABLE | TK_WRITABLE));

	/* Registered but quiet. */
	cr_assert_eq(tk_loop_modify(loop, sv[0], 0), 0);
	s.calls = 0;
	t_run_for(loop, 20);
	cr_assert_eq(s.calls, 0);
	cr_assert_eq(tk_loop_watch(loop, sv[0], TK_READABLE, record, &s),
		     -EEXIST, "a quiet watcher still owns the fd");

	/* Gone: no more calls, and the fd may be watched again. */
	cr_assert_eq(tk_loop_modify(loop, sv[0], TK_READABLE), 0);
	tk_loop_unwatch(loop, sv[0]);
	t_run_for(loop, 20);
	cr_assert_eq(s.calls, 0);
	cr_assert_eq(tk_loop_modify(loop, sv[0], TK_READABLE), -ENOENT);
	tk_loop_unwatch(loop, sv[0]); /* twice: harmless */
	cr_assert_eq(tk_loop_watch(loop, sv[0], TK_READABLE, record, &s), 0);
	RUN_UNTIL(loop, 1000, s.calls > 0);
	tk_loop_unwatch(loop, sv[0]);
	close(sv[0]);
	close(sv[1]);
	tk_loop_free(loop);
}

Test(loop, watch_errors)
{
	struct tk_loop *loop = t_loop_new();
	struct seen s = { 0 };
	char path[] = "/tmp/tk-test-loop-XXXXXX";
	int sv[2], file;

	socketpair_nb(sv);
	cr_assert_eq(tk_loop_watch(loop, sv[0], TK_READABLE, record, &s), 0);
	cr_assert_eq(tk_loop_watch(loop, sv[0], TK_WRITABLE, record, &s),
		     -EEXIST);
	cr_assert_eq(tk_loop_watch(loop, -1, TK_READABLE, record, &s), -EINVAL);
	cr_assert_eq(tk_loop_watch(loop, sv[1], TK_READABLE, NULL, &s),
		     -EINVAL);
	cr_assert_eq(tk_loop_modify(loop, sv[1], TK_READABLE), -ENOENT);
	cr_assert_eq(tk_loop_modify(loop, -1, TK_READABLE), -ENOENT);
	cr_assert_eq(tk_loop_modify(loop, 100000, TK_READABLE), -ENOENT);
	tk_loop_unwatch(loop, -1);
	tk_loop_unwatch(loop, 100000);

	/*
	 * A regular file: epoll cannot poll it (-EPERM, and nothing is
	 * registered); poll(2) says it is always ready.
	 */
	file = mkstemp(path);
	cr_assert(file >= 0);
	unlink(path);
	if (strcmp(tk_backend_name(), "epoll") == 0) {
		cr_assert_eq(tk_loop_watch(loop, file, TK_READABLE, record, &s),
			     -EPERM);
		cr_assert_eq(tk_loop_modify(loop, file, TK_READABLE), -ENOENT);
	} else {
		cr_assert_eq(tk_loop_watch(loop, file, TK_READABLE, record, &s),
			     0);
		tk_loop_unwatch(loop, file);
	}

	/* A closed fd: -EBADF from the kernel. */
	int dead = dup(sv[1]);

	close(dead);
	cr_assert_eq(tk_loop_watch(loop, dead, TK_READABLE, record, &s),
		     -EBADF);
	cr_assert_eq(tk_loop_modify(loop, dead, TK_READABLE), -ENOENT);

	/* A high fd number grows the table. */
	int high = fcntl(sv[1], F_DUPFD_CLOEXEC, 900);

	cr_assert(high >= 900);
	cr_assert_eq(tk_loop_watch(loop, high, TK_WRITABLE, record, &s), 0);
	RUN_UNTIL(loop, 1000, s.calls > 0 && s.fd == high);
	tk_loop_unwatch(loop, high);
	close(high);

	tk_loop_unwatch(loop, sv[0]);
	close(file);
	close(sv[0]);
	close(sv[1]);
	tk_loop_free(loop);
}

Test(loop, hangup_is_reported_even_when_quiet)
{
	struct tk_loop *loop = t_loop_new();
	struct seen s = { 0 };
	int sv[2];

	socketpair_nb(sv);
	cr_assert_eq(tk_loop_watch(loop, sv[0], 0, record, &s), 0);
	close(sv[1]);
	RUN_UNTIL(loop, 1000, s.calls > 0);
	cr_assert(s.events & TK_HANGUP);
	cr_assert_eq(s.events & (TK_READABLE | TK_WRITABLE), 0,
		     "interest 0 reports no readiness: %#x", s.events);
	tk_loop_unwatch(loop, sv[0]);

	/* With interest, the hang-up comes with it: the reader sees EOF. */
	s = (struct seen){ 0 };
	cr_assert_eq(tk_loop_watch(loop, sv[0], TK_READABLE, record, &s), 0);
	RUN_UNTIL(loop, 1000, s.calls > 0);
	cr_assert(s.events & TK_READABLE);
	tk_loop_unwatch(loop, sv[0]);
	close(sv[0]);
	tk_loop_free(loop);
}

/*
 * Two fds readable in the same round.  Whichever callback runs first
 * unwatches the other, closes it and watches a new fd that gets the same
 * number.  The pending event of the old fd must reach neither the old
 * callback nor the new watcher.
 */
struct race {
	struct tk_loop *loop;
	int fd[2];
	struct seen seen[2];
	struct seen fresh;
	int victim; /* index of the fd replaced, -1 until then */
	int round;
	int fresh_round_called;
};

static void
race_cb(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct race *r = arg;
	int me = fd == r->fd[0] ? 0 : 1, other = 1 - me;

	record(loop, fd, events, &r->seen[me]);
	if (r->victim >= 0)
		return;
	r->victim = other;
	tk_loop_unwatch(loop, r->fd[other]);
	close(r->fd[other]);
	int nfd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); /* readable */

	cr_assert(nfd >= 0);
	if (nfd != r->fd[other]) {
		cr_assert(dup3(nfd, r->fd[other], O_CLOEXEC) == r->fd[other]);
		close(nfd);
	}
	cr_assert_eq(tk_loop_watch(loop, r->fd[other], TK_READABLE, record,
				   &r->fresh),
		     0);
}

Test(loop, unwatch_in_earlier_callback_drops_later_event)
{
	struct tk_loop *loop = t_loop_new();
	struct race r = { .loop = loop, .victim = -1 };
	int a[2], b[2];

	socketpair_nb(a);
	socketpair_nb(b);
	r.fd[0] = a[0];
	r.fd[1] = b[0];
	cr_assert_eq(tk_loop_watch(loop, a[0], TK_READABLE, race_cb, &r), 0);
	cr_assert_eq(tk_loop_watch(loop, b[0], TK_READABLE, race_cb, &r), 0);
	cr_assert_eq(write(a[1], "x", 1), 1);
	cr_assert_eq(write(b[1], "y", 1), 1);
	/* Both are ready now: one epoll_wait reports both. */
	cr_assert_eq(tk_loop_run_once(loop, 1000), 0);
	cr_assert_geq(r.victim, 0);
	cr_assert_eq(r.seen[r.victim].calls, 0,
		     "the unwatched fd's pending event was delivered");
	cr_assert_eq(r.seen[1 - r.victim].calls, 1);
	cr_assert_eq(r.fresh.calls, 0,
		     "a stale event reached the fd's new watcher");
	/* The new watcher works from the next round on. */
	RUN_UNTIL(loop, 1000, r.fresh.calls > 0);
	cr_assert_eq(r.fresh.events, TK_READABLE);
	cr_assert_eq(r.seen[r.victim].calls, 0);

	tk_loop_unwatch(loop, r.fd[0]);
	tk_loop_unwatch(loop, r.fd[1]);
	close(r.fd[0]);
	close(r.fd[1]);
	close(a[1]);
	close(b[1]);
	tk_loop_free(loop);
}

/* Posts from another thread. */
struct poster {
	struct tk_loop *loop;
	pthread_t loop_thread;
	atomic_int ran;
	int order[100];
	int bad_thread;
	int n;
};

struct post_item {
	struct poster *p;
	int i;
};

static void
on_post(struct tk_loop *loop, void *arg)
{
	struct post_item *it = arg;
	struct poster *p = it->p;

	if (!pthread_equal(pthread_self(), p->loop_thread))
		p->bad_thread++;
	p->order[p->n++] = it->i;
	atomic_fetch_add(&p->ran, 1);
	if (p->n == 100)
		tk_loop_stop(loop);
}

static struct post_item items[100];

static void *
post_many(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < 100; i++) {
		items[i].p = p;
		items[i].i = i;
		cr_assert_eq(tk_loop_post(p->loop, on_post, &items[i]), 0);
	}
	return NULL;
}

Test(loop, post_from_thread_runs_on_loop_thread_in_order)
{
	struct poster p = { 0 };
	struct t_guard g;
	pthread_t th;

	p.loop = t_loop_new();
	p.loop_thread = pthread_self();
	cr_assert_eq(pthread_create(&th, NULL, post_many, &p), 0);
	/* Nothing else due soon: only the posts can wake and stop it. */
	t_guard_start(&g, p.loop, 5000);
	cr_assert_eq(tk_loop_run(p.loop), 0);
	t_guard_end(&g);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(p.n, 100);
	cr_assert_eq(p.bad_thread, 0, "a post ran on another thread");
	for (int i = 0; i < 100; i++)
		cr_assert_eq(p.order[i], i, "post %d ran as %d", i, p.order[i]);
	tk_loop_free(p.loop);
}

static void
count_post(struct tk_loop *loop, void *arg)
{
	(void)loop;
	++*(int *)arg;
}

Test(loop, post_from_loop_thread_and_free_with_pending_posts)
{
	struct tk_loop *loop = t_loop_new();
	int n = 0;

	cr_assert_eq(tk_loop_post(loop, count_post, &n), 0);
	cr_assert_eq(n, 0, "a post ran inside tk_loop_post");
	RUN_UNTIL(loop, 1000, n == 1);
	/* Pending at free: dropped without running, and without a leak. */
	cr_assert_eq(tk_loop_post(loop, count_post, &n), 0);
	tk_loop_free(loop);
	cr_assert_eq(n, 1);
}

/* Stop from another thread, while the loop sleeps in epoll_wait. */
struct stopper {
	struct tk_loop *loop;
	pthread_t th;
	bool started;
};

static void *
stop_it(void *arg)
{
	tk_loop_stop(arg);
	return NULL;
}

static void
start_stopper(struct tk_timer *t, void *arg)
{
	struct stopper *s = arg;

	(void)t;
	cr_assert_eq(pthread_create(&s->th, NULL, stop_it, s->loop), 0);
	s->started = true;
}

Test(loop, stop_from_another_thread)
{
	struct stopper s = { 0 };
	struct t_guard g;
	struct tk_timer *t;
	uint64_t t0;

	s.loop = t_loop_new();
	t = t_timer_new(s.loop, start_stopper, &s);
	tk_timer_start(t, 20, 0);
	t0 = t_now_ms();
	t_guard_start(&g, s.loop, 5000);
	cr_assert_eq(tk_loop_run(s.loop), 0);
	t_guard_end(&g);
	cr_assert(s.started);
	cr_assert_lt(t_now_ms() - t0, 5000);
	cr_assert_eq(pthread_join(s.th, NULL), 0);

	/* The stop was consumed: the loop runs again until told. */
	int n = 0;

	cr_assert_eq(tk_loop_post(s.loop, count_post, &n), 0);
	cr_assert_eq(tk_loop_run_once(s.loop, 1000), 0);
	cr_assert_eq(n, 1);
	s.started = false;
	tk_timer_start(t, 5, 0);
	t_guard_start(&g, s.loop, 5000);
	cr_assert_eq(tk_loop_run(s.loop), 0);
	t_guard_end(&g);
	cr_assert(s.started);
	cr_assert_eq(pthread_join(s.th, NULL), 0);
	tk_timer_free(t);
	tk_loop_free(s.loop);
}

static void
stop_from_cb(struct tk_timer *t, void *arg)
{
	(void)t;
	tk_loop_stop(arg);
}

Test(loop, stop_from_own_callback_ends_run)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_timer *t = t_timer_new(loop, stop_from_cb, loop);
	struct t_guard g;

	tk_timer_start(t, 1, 0);
	t_guard_start(&g, loop, 5000);
	cr_assert_eq(tk_loop_run(loop), 0);
	t_guard_end(&g);
	cr_assert(!tk_timer_is_active(t));
	tk_timer_free(t);
	tk_loop_free(loop);
}

Test(loop, run_once_waits_for_its_timeout)
{
	struct tk_loop *loop = t_loop_new();
	uint64_t t0 = t_now_ms();

	cr_assert_eq(tk_loop_run_once(loop, 30), 0);
	cr_assert_geq(t_now_ms() - t0, 29);
	t0 = t_now_ms();
	cr_assert_eq(tk_loop_run_once(loop, 0), 0);
	cr_assert_lt(t_now_ms() - t0, 1000);
	tk_loop_free(loop);
}

/* Signals through the loop. */
struct sigs {
	int n;
	int signo;
	pthread_t thread;
	bool on_loop_thread;
};

static void
on_sig(struct tk_loop *loop, int signo, void *arg)
{
	struct sigs *s = arg;

	(void)loop;
	s->n++;
	s->signo = signo;
	s->on_loop_thread = pthread_equal(pthread_self(), s->thread);
}

Test(loop, signal_raised_in_loop_thread)
{
	struct tk_loop *loop = t_loop_new();
	struct sigs s = { .thread = pthread_self() };

	cr_assert_eq(tk_loop_signal(loop, SIGUSR1, on_sig, &s), 0);
	cr_assert_eq(raise(SIGUSR1), 0); /* blocked now: it waits for us */
	RUN_UNTIL(loop, 2000, s.n == 1);
	cr_assert_eq(s.signo, SIGUSR1);
	cr_assert(s.on_loop_thread);
	/* Again: delivered once per signal. */
	cr_assert_eq(raise(SIGUSR1), 0);
	RUN_UNTIL(loop, 2000, s.n == 2);
	t_run_for(loop, 20);
	cr_assert_eq(s.n, 2);
	tk_loop_free(loop);
}

struct killer {
	pthread_t target;
	int signo;
};

static void *
kill_it(void *arg)
{
	struct killer *k = arg;

	cr_assert_eq(pthread_kill(k->target, k->signo), 0);
	return NULL;
}

Test(loop, signal_sent_from_another_thread)
{
	struct tk_loop *loop = t_loop_new();
	struct sigs s1 = { .thread = pthread_self() };
	struct sigs s2 = { .thread = pthread_self() };
	struct killer k = { .target = pthread_self(), .signo = SIGUSR1 };
	pthread_t th;

	/* Two signals on one loop share its signalfd. */
	cr_assert_eq(tk_loop_signal(loop, SIGUSR1, on_sig, &s1), 0);
	cr_assert_eq(tk_loop_signal(loop, SIGUSR2, on_sig, &s2), 0);
	cr_assert_eq(pthread_create(&th, NULL, kill_it, &k), 0);
	RUN_UNTIL(loop, 2000, s1.n == 1);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(s1.signo, SIGUSR1);
	cr_assert(s1.on_loop_thread);
	cr_assert_eq(s2.n, 0);
	k.signo = SIGUSR2;
	cr_assert_eq(pthread_create(&th, NULL, kill_it, &k), 0);
	RUN_UNTIL(loop, 2000, s2.n == 1);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(s2.signo, SIGUSR2);
	cr_assert_eq(s1.n, 1);
	tk_loop_free(loop);
}

Test(loop, signal_bad_arguments)
{
	struct tk_loop *loop = t_loop_new();
	struct sigs s = { 0 };

	cr_assert_eq(tk_loop_signal(loop, 0, on_sig, &s), -EINVAL);
	cr_assert_eq(tk_loop_signal(loop, NSIG, on_sig, &s), -EINVAL);
	cr_assert_eq(tk_loop_signal(loop, SIGUSR1, NULL, &s), -EINVAL);
	tk_loop_free(loop);
}

/*
 * poll backend: a signal's handler knows one loop's pipe, so a second loop
 * asking for the same signal is refused, and gets it once the first is
 * freed.  (epoll: each loop has a signalfd of its own.)
 */
static void
ignore_signal(struct tk_loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	(void)arg;
}

Test(loop, poll_backend_gives_a_signal_to_one_loop)
{
	struct tk_loop *a, *b;

	if (strcmp(tk_backend_name(), "poll") != 0)
		cr_skip_test("the epoll backend has a signalfd per loop");
	a = t_loop_new();
	b = t_loop_new();
	cr_assert_eq(tk_loop_signal(a, SIGUSR2, ignore_signal, NULL), 0);
	cr_assert_eq(tk_loop_signal(b, SIGUSR2, ignore_signal, NULL), -EBUSY);
	tk_loop_free(a);
	cr_assert_eq(tk_loop_signal(b, SIGUSR2, ignore_signal, NULL), 0);
	tk_loop_free(b);
}
