/* test_relay.c: tk_conn_pipe() between two loopback connections, with
 * splice(2) and through user space. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

TestSuite(relay, .timeout = 30);

/*
 * peer_a -- a ==relay== b -- peer_b: a and b are the library's
 * connections (accepted from a raw listener), the peers are the test's.
 */
struct fix {
	struct tk_loop *loop;
	int lfd;
	struct peer pa, pb;
	struct tk_conn *a, *b;
	struct tk_pipe *p;
	bool done;
	struct tk_pipe_result r;
	char why[160];
	/* The tap's record: bytes seen each way, ends seen. */
	size_t tapped[2];
	int tap_ends;
};

static const struct tk_service idle_service = { .name = "idle" };

static void
on_done(struct tk_pipe *p, const struct tk_pipe_result *r, void *arg)
{
	struct fix *f = arg;

	cr_assert_eq(p, f->p);
	cr_assert(!f->done, "done twice");
	f->done = true;
	f->r = *r;
	snprintf(f->why, sizeof(f->why), "%s", r->why);
}

static void
on_tap(struct tk_pipe *p, enum tk_pipe_side from, const char *data, size_t n,
       void *arg)
{
	struct fix *f = arg;

	(void)p;
	(void)data;
	if (n == 0)
		f->tap_ends++;
	f->tapped[from] += n;
}

static struct tk_conn *
accept_conn(struct fix *f, struct peer *peer, const struct tk_addr *addr)
{
	struct tk_conn *c;
	int fd;

	peer_connect(peer, f->loop, addr);
	fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	cr_assert(fd >= 0, "accept: %s", strerror(errno));
	c = tk__conn_adopt(f->loop, fd, NULL, NULL, NULL, &idle_service, NULL);
	cr_assert_not_null(c);
	cr_assert(tk_conn_is_open(c));
	return c;
}

/* mode: 's' splice, 'c' copy (TK_PIPE_COPY), 't' copy through a tap. */
static void
setup(struct fix *f, char mode, size_t high_water)
{
	struct tk_pipe_opts o;
	struct tk_addr addr;

	memset(f, 0, sizeof(*f));
	/* The zero-copy path is taken only where SIGPIPE is ignored. */
	signal(SIGPIPE, SIG_IGN);
	f->loop = t_loop_new();
	f->lfd = t_raw_listen("127.0.0.1", 8, &addr);
	f->a = accept_conn(f, &f->pa, &addr);
	f->b = accept_conn(f, &f->pb, &addr);
	tk_pipe_opts_init(&o);
	if (high_water != 0) {
		o.high_water = high_water;
		o.low_water = high_water / 4;
	}
	if (mode == 'c')
		o.flags |= TK_PIPE_COPY;
	if (mode == 't')
		o.tap = on_tap;
	o.done = on_done;
	o.arg = f;
	cr_assert_eq(tk_conn_pipe(f->a, f->b, &o, &f->p), 0);
	cr_assert_eq(tk_pipe_spliced(f->p), mode == 's');
	cr_assert_eq(tk_pipe_conn(f->p, TK_PIPE_B), f->b);
}

static void
teardown(struct fix *f)
{
	peer_free(&f->pa);
	peer_free(&f->pb);
	close(f->lfd);
	tk_loop_free(f->loop);
}

static void
both_ways(char mode)
{
	struct fix f;

	setup(&f, mode, 0);
	peer_send_str(&f.pa, "hello from a");
	peer_send_str(&f.pb, "and from b");
	RUN_UNTIL(f.loop, 5000, f.pb.in_len == 12 && f.pa.in_len == 10);
	cr_assert(peer_got(&f.pb, "hello from a"));
	cr_assert(peer_got(&f.pa, "and from b"));
	cr_assert(!f.done);
	/* Both ends: an orderly end, told once, with the counts. */
	peer_shutdown(&f.pa);
	peer_shutdown(&f.pb);
	RUN_UNTIL(f.loop, 5000, f.done && f.pa.eof && f.pb.eof);
	cr_assert_eq(f.r.err, 0, "err %d (%s)", f.r.err, f.why);
	cr_assert_eq(f.r.a_to_b, 12);
	cr_assert_eq(f.r.b_to_a, 10);
	cr_assert_eq(f.r.spliced, mode == 's');
	cr_assert_eq(f.r.err_side, TK_PIPE_NONE);
	if (mode == 't') {
		cr_assert_eq(f.tapped[TK_PIPE_A], 12);
		cr_assert_eq(f.tapped[TK_PIPE_B], 10);
		cr_assert_eq(f.tap_ends, 2);
	}
	teardown(&f);
}

Test(relay, both_ways_splice)
{
	both_ways('s');
}
Test(relay, both_ways_copy)
{
	both_ways('c');
}
Test(relay, both_ways_tap)
{
	both_ways('t');
}

/*
 * One side half-closes: the other sees EOF after every byte, and can still
 * answer through the relay; the first to close is that side.
 */
static void
half_close(char mode, int first)
{
	struct fix f;
	struct peer *p1, *p2;

	setup(&f, mode, 0);
	p1 = first == TK_PIPE_A ? &f.pa : &f.pb;
	p2 = first == TK_PIPE_A ? &f.pb : &f.pa;
	peer_send_str(p1, "request");
	peer_shutdown(p1);
	RUN_UNTIL(f.loop, 5000, p2->eof);
	cr_assert(peer_got(p2, "request"));
	cr_assert(!f.done);
	/* The other way still flows after the half-close. */
	peer_send_str(p2, "answer after EOF");
	RUN_UNTIL(f.loop, 5000, p1->in_len == 16);
	cr_assert(peer_got(p1, "answer after EOF"));
	cr_assert(!p1->eof);
	peer_shutdown(p2);
	RUN_UNTIL(f.loop, 5000, p1->eof && f.done);
	cr_assert_eq(f.r.err, 0, "err %d (%s)", f.r.err, f.why);
	cr_assert_eq(f.r.first, first);
	teardown(&f);
}

Test(relay, half_close_a_splice)
{
	half_close('s', TK_PIPE_A);
}
Test(relay, half_close_b_splice)
{
	half_close('s', TK_PIPE_B);
}
Test(relay, half_close_a_copy)
{
	half_close('c', TK_PIPE_A);
}
Test(relay, half_close_b_copy)
{
	half_close('t', TK_PIPE_B);
}

/*
 * b's peer does not read: once the kernel's buffers are full, the relay
 * stops reading a, holding no more than its high water; when the peer
 * reads again, every byte arrives in order.
 */
static void
backpressure(char mode)
{
	enum { TOTAL = 16 << 20, HIGH = 64 << 10 };
	struct fix f;
	char *data = malloc(TOTAL);
	uint64_t held, last_in = UINT64_MAX;

	cr_assert_not_null(data);
	t_fill(data, TOTAL, 0, 7);
	setup(&f, mode, HIGH);
	peer_set_reading(&f.pb, false);
	peer_send(&f.pa, data, TOTAL);
	/* Until reading a stops: nothing more comes in over 200 ms. */
	for (int i = 0; i < 100; i++) {
		t_run_for(f.loop, 200);
		if (tk_conn_bytes_in(f.a) == last_in)
			break;
		last_in = tk_conn_bytes_in(f.a);
	}
	cr_assert_eq(tk_conn_bytes_in(f.a), last_in, "a is still read");
	cr_assert_gt(peer_pending(&f.pa), 0, "a's peer could send it all");
	held = tk_conn_bytes_in(f.a) - tk_conn_bytes_out(f.b);
	/* The high water, and one read of 64 KiB over it when copying. */
	cr_assert_leq(held, HIGH + (mode == 's' ? 0 : 64 << 10),
		      "%llu bytes held", (unsigned long long)held);
	if (mode != 's')
		cr_assert_leq(tk_conn_pending(f.b), HIGH + (64 << 10));
	peer_set_reading(&f.pb, true);
	peer_shutdown(&f.pa);
	RUN_UNTIL(f.loop, 20000, f.pb.eof);
	cr_assert_eq(f.pb.in_len, TOTAL);
	cr_assert_eq(t_check(f.pb.in, TOTAL, 0, 7), TOTAL);
	free(data);
	teardown(&f);
}

Test(relay, backpressure_splice)
{
	backpressure('s');
}
Test(relay, backpressure_copy)
{
	backpressure('c');
}

/* A reset from a mid-stream ends b with a reset too, and is told. */
static void
reset(char mode)
{
	struct fix f;

	setup(&f, mode, 0);
	peer_send_str(&f.pa, "some");
	RUN_UNTIL(f.loop, 5000, f.pb.in_len == 4);
	peer_reset(&f.pa);
	RUN_UNTIL(f.loop, 5000, f.done && f.pb.err != 0);
	cr_assert_eq(f.pb.err, -ECONNRESET, "b's peer: %s",
		     strerror(-f.pb.err));
	cr_assert(!f.pb.eof, "b's peer saw a clean end of a cut stream");
	cr_assert_eq(f.r.err, -ECONNRESET, "err %d", f.r.err);
	cr_assert_eq(f.r.err_side, TK_PIPE_A);
	cr_assert_eq(f.r.first, TK_PIPE_A);
	cr_assert_eq(f.r.a_to_b, 4);
	teardown(&f);
}

Test(relay, reset_splice)
{
	reset('s');
}
Test(relay, reset_copy)
{
	reset('c');
}

/* The idle timeout of one side ends the relay (a reset to the other). */
Test(relay, idle_timeout_ends_both)
{
	struct fix f;

	setup(&f, 's', 0);
	tk_conn_set_idle_timeout(f.b, 100);
	RUN_UNTIL(f.loop, 5000, f.done);
	cr_assert_eq(f.r.err, TK_EIDLE);
	cr_assert_eq(f.r.err_side, TK_PIPE_B);
	RUN_UNTIL(f.loop, 5000, f.pa.err != 0 || f.pa.eof);
	cr_assert_eq(f.pa.err, -ECONNRESET);
	teardown(&f);
}

Test(relay, refuses_what_is_not_open)
{
	struct fix f;
	struct tk_pipe *p;

	setup(&f, 's', 0);
	cr_assert_eq(tk_conn_pipe(f.a, f.a, NULL, &p), -EINVAL);
	peer_shutdown(&f.pa);
	peer_shutdown(&f.pb);
	RUN_UNTIL(f.loop, 5000, f.done);
	teardown(&f);
}

/* tk_pipe_abort(): both peers see a reset, done reports the error. */
static void
abort_both(char mode)
{
	struct fix f;

	setup(&f, mode, 0);
	peer_send_str(&f.pa, "x");
	RUN_UNTIL(f.loop, 5000, f.pb.in_len == 1);
	tk_pipe_abort(f.p, -ECANCELED);
	RUN_UNTIL(f.loop, 5000, f.done && f.pa.err != 0 && f.pb.err != 0);
	cr_assert_eq(f.pa.err, -ECONNRESET);
	cr_assert_eq(f.pb.err, -ECONNRESET);
	cr_assert_eq(f.r.err, -ECANCELED);
	teardown(&f);
}

Test(relay, abort_splice)
{
	abort_both('s');
}
Test(relay, abort_copy)
{
	abort_both('c');
}

/*
 * splice(2) into a socket raises SIGPIPE when the peer is gone, and it
 * cannot be told not to: where SIGPIPE still has its default action (it
 * would kill the program), plain pairs are copied instead, and a peer that
 * resets mid-stream costs an EPIPE, not the process.
 */
Test(relay, copies_where_sigpipe_is_not_ignored)
{
	struct fix f;
	struct tk_pipe_opts o;
	struct tk_addr addr;

	memset(&f, 0, sizeof(f));
	signal(SIGPIPE, SIG_DFL);
	f.loop = t_loop_new();
	f.lfd = t_raw_listen("127.0.0.1", 8, &addr);
	f.a = accept_conn(&f, &f.pa, &addr);
	f.b = accept_conn(&f, &f.pb, &addr);
	tk_pipe_opts_init(&o);
	o.done = on_done;
	o.arg = &f;
	cr_assert_eq(tk_conn_pipe(f.a, f.b, &o, &f.p), 0);
	cr_assert_not(tk_pipe_spliced(f.p), "spliced with SIGPIPE at default");
	/* b's peer resets while a's keeps sending: no signal, an error. */
	peer_reset(&f.pb);
	for (int i = 0; i < 50 && !f.done; i++) {
		peer_send_str(&f.pa, "into a reset peer");
		t_run_for(f.loop, 10);
	}
	RUN_UNTIL(f.loop, 3000, f.done);
	teardown(&f);
}

/* Small kernel buffers, so that what is held is the relay's to hold. */
static void
small_bufs(int fd)
{
	int n = 32 << 10;

	cr_assert(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n)) == 0);
	cr_assert(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n)) == 0);
}

/*
 * Both peers send a message each before they read (a write-then-read
 * protocol), with a high water that holds it: copying, the relay buffers
 * each direction up to the high water, and neither waits on the other
 * (the connections' own output limits must not stop a side's reading).
 */
static void
both_push(char mode)
{
	enum { TOTAL = 2 << 20, HIGH = 4 << 20 };
	struct fix f;
	char *da = malloc(TOTAL), *db = malloc(TOTAL);

	cr_assert(da != NULL && db != NULL);
	t_fill(da, TOTAL, 0, 3);
	t_fill(db, TOTAL, 0, 5);
	setup(&f, mode, HIGH);
	small_bufs(f.pa.fd);
	small_bufs(f.pb.fd);
	small_bufs(tk_conn_fd(f.a));
	small_bufs(tk_conn_fd(f.b));
	peer_set_reading(&f.pa, false);
	peer_set_reading(&f.pb, false);
	peer_send(&f.pa, da, TOTAL);
	peer_send(&f.pb, db, TOTAL);
	RUN_UNTIL(f.loop, 10000,
		  peer_pending(&f.pa) == 0 && peer_pending(&f.pb) == 0);
	peer_set_reading(&f.pa, true);
	peer_set_reading(&f.pb, true);
	RUN_UNTIL(f.loop, 10000, f.pb.in_len == TOTAL && f.pa.in_len == TOTAL);
	cr_assert_eq(t_check(f.pb.in, TOTAL, 0, 3), TOTAL);
	cr_assert_eq(t_check(f.pa.in, TOTAL, 0, 5), TOTAL);
	peer_shutdown(&f.pa);
	peer_shutdown(&f.pb);
	RUN_UNTIL(f.loop, 5000, f.done);
	cr_assert_eq(f.r.err, 0, "err %d (%s)", f.r.err, f.why);
	free(da);
	free(db);
	teardown(&f);
}

Test(relay, both_push_large_high_water_copy)
{
	both_push('c');
}
Test(relay, both_push_large_high_water_tap)
{
	both_push('t');
}

/* A service that only notes its connection's EOF (before a relay). */
static void
eof_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	(void)c;
	(void)data;
	if (n == TK_EOF)
		(*(int *)arg)++;
}

static const struct tk_service eof_service = { .name = "eof",
					       .data = eof_data };

/*
 * a's peer half-closed before the relay started, and a read that EOF
 * already: the relay carries it (b's peer sees the end), and b's answer
 * still flows back.
 */
Test(relay, eof_before_pipe_is_carried)
{
	struct fix f;
	struct tk_pipe_opts o;
	struct tk_addr addr;
	int eofs = 0;
	int fd;

	memset(&f, 0, sizeof(f));
	signal(SIGPIPE, SIG_IGN);
	f.loop = t_loop_new();
	f.lfd = t_raw_listen("127.0.0.1", 8, &addr);
	peer_connect(&f.pa, f.loop, &addr);
	fd = accept4(f.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	cr_assert(fd >= 0, "accept: %s", strerror(errno));
	f.a = tk__conn_adopt(f.loop, fd, NULL, NULL, NULL, &eof_service, &eofs);
	cr_assert_not_null(f.a);
	f.b = accept_conn(&f, &f.pb, &addr);
	peer_shutdown(&f.pa);
	RUN_UNTIL(f.loop, 5000, eofs == 1);
	tk_pipe_opts_init(&o);
	o.done = on_done;
	o.arg = &f;
	cr_assert_eq(tk_conn_pipe(f.a, f.b, &o, &f.p), 0);
	RUN_UNTIL(f.loop, 5000, f.pb.eof);
	cr_assert_eq(f.pb.in_len, 0);
	peer_send_str(&f.pb, "answer after EOF");
	peer_shutdown(&f.pb);
	RUN_UNTIL(f.loop, 5000, f.pa.eof && f.done);
	cr_assert(peer_got(&f.pa, "answer after EOF"));
	cr_assert_eq(f.r.err, 0, "err %d (%s)", f.r.err, f.why);
	cr_assert_eq(f.r.first, TK_PIPE_A);
	cr_assert_eq(f.r.b_to_a, 16);
	teardown(&f);
}
