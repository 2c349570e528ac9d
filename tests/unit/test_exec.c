/* test_exec.c: a program per connection (tcpkit/exec.h): stdio, environment,
 * exit reports, reaping, the bound on children, tk_conn_detach(). */
#include <criterion/criterion.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "helpers.h"
#include "internal.h"

TestSuite(exec, .timeout = 30);

#define MAXEXITS 8

struct run {
	struct tk_loop *loop;
	struct tk_server *srv;
	struct tk_exec *x;
	struct tk_exec_exit exits[MAXEXITS];
	int nexits;
};

static void
on_exit_cb(struct tk_exec *x, const struct tk_exec_exit *e, void *arg)
{
	struct run *r = arg;

	cr_assert_eq(x, r->x);
	cr_assert_lt(r->nexits, MAXEXITS);
	r->exits[r->nexits++] = *e;
}

static void
run_start(struct run *r, const char *const *argv, bool stderr_to_peer,
	  unsigned max_children)
{
	struct tk_exec_opts xo = {
		.argv = argv,
		.stderr_to_peer = stderr_to_peer,
		.max_children = max_children,
		.on_exit = on_exit_cb,
		.arg = r,
	};
	struct tk_addr a;

	memset(r, 0, sizeof(*r));
	r->loop = t_loop_new();
	cr_assert_eq(tk_exec_new(r->loop, &xo, &r->x), 0);
	r->srv = t_server_new(r->loop, NULL, &tk_service_exec, r->x);
	cr_assert_eq(tk_addr_parse("127.0.0.1:0", 0, &a), 0);
	cr_assert_eq(tk_server_listen(r->srv, &a, false), 0);
	cr_assert_eq(tk_server_start(r->srv), 0);
}

static void
run_free(struct run *r)
{
	tk_server_free(r->srv);
	tk_exec_free(r->x);
	tk_loop_free(r->loop);
}

/* A blocking client with a receive deadline. */
static int
client(struct run *r)
{
	struct timeval tv = { .tv_sec = 10 };
	const struct tk_addr *a = tk_server_addr(r->srv, 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		     0);
	cr_assert_eq(connect(fd, &a->u.sa, a->len), 0);
	return fd;
}

/* Everything up to the peer's FIN (the child's end), run beside the loop. */
static size_t
read_all(struct run *r, int fd, char *buf, size_t cap)
{
	size_t got = 0;
	uint64_t end = t_now_ms() + 10000;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		cr_assert_lt(t_now_ms(), end, "no FIN from the child");
		cr_assert_eq(tk_loop_run_once(r->loop, 0), 0);
		if (poll(&p, 1, 20) == 0)
			continue;
		n = read(fd, buf + got, cap - 1 - got);
		cr_assert_geq(n, 0, "read: %s", strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
		cr_assert_lt(got, cap - 1);
	}
	buf[got] = '\0';
	return got;
}

static void
assert_no_zombie(void)
{
	int status;

	cr_assert_eq(waitpid(-1, &status, WNOHANG), -1,
		     "a child was left to reap");
	cr_assert_eq(errno, ECHILD);
}

Test(exec, socket_is_stdio_and_exit_status_reported)
{
	static const char *const argv[] = { "cat", NULL };
	struct run r;
	char buf[256];
	int fd;

	run_start(&r, argv, false, 0);
	fd = client(&r);
	cr_assert_eq(write(fd, "hello\n", 6), 6);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	cr_assert_eq(read_all(&r, fd, buf, sizeof(buf)), 6);
	cr_assert_str_eq(buf, "hello\n");
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	cr_assert_gt(r.exits[0].pid, 0);
	cr_assert_eq(r.exits[0].spawn_err, 0);
	cr_assert(WIFEXITED(r.exits[0].status));
	cr_assert_eq(WEXITSTATUS(r.exits[0].status), 0);
	cr_assert_eq(tk_addr_family(&r.exits[0].peer), AF_INET);
	cr_assert_eq(tk_exec_running(r.x), 0);
	close(fd);
	run_free(&r);
	assert_no_zombie();
}

Test(exec, stdio_blocks_as_programs_expect)
{
	/* cat reads before the client has written: a read that must wait. */
	static const char *const argv[] = { "sh", "-c", "echo ready; cat",
					    NULL };
	struct run r;
	char buf[64];
	int fd;

	run_start(&r, argv, false, 0);
	fd = client(&r);
	RUN_UNTIL(r.loop, 5000, tk_exec_running(r.x) == 1);
	cr_assert_eq(read(fd, buf, 6), 6);
	cr_assert_eq(write(fd, "later\n", 6), 6);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	read_all(&r, fd, buf, sizeof(buf));
	cr_assert_str_eq(buf, "later\n");
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	cr_assert_eq(WEXITSTATUS(r.exits[0].status), 0);
	close(fd);
	run_free(&r);
	assert_no_zombie();
}

Test(exec, environment_names_both_ends)
{
	static const char *const argv[] = {
		"sh", "-c",
		"echo \"$TCPKIT_PEER_ADDR $TCPKIT_PEER_PORT "
		"$TCPKIT_LOCAL_ADDR $TCPKIT_LOCAL_PORT\"",
		NULL
	};
	struct run r;
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	char buf[256], want[256];
	int fd;

	/* A stale value in our environment must not reach the child. */
	setenv("TCPKIT_PEER_ADDR", "stale", 1);
	run_start(&r, argv, false, 0);
	fd = client(&r);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
	snprintf(want, sizeof(want), "127.0.0.1 %u 127.0.0.1 %u\n",
		 ntohs(me.sin_port), tk_addr_port(tk_server_addr(r.srv, 0)));
	read_all(&r, fd, buf, sizeof(buf));
	cr_assert_str_eq(buf, want);
	cr_assert_str_eq(getenv("TCPKIT_PEER_ADDR"), "stale");
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	close(fd);
	run_free(&r);
	assert_no_zombie();
}

Test(exec, early_exit_is_fin_and_status)
{
	static const char *const argv[] = { "sh", "-c", "exit 3", NULL };
	struct run r;
	char buf[64];
	int fd;

	run_start(&r, argv, false, 0);
	fd = client(&r);
	/* The child never reads: its exit alone must end the stream. */
	cr_assert_eq(read_all(&r, fd, buf, sizeof(buf)), 0);
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	cr_assert(WIFEXITED(r.exits[0].status));
	cr_assert_eq(WEXITSTATUS(r.exits[0].status), 3);
	close(fd);
	run_free(&r);
	assert_no_zombie();
}

Test(exec, stderr_to_peer)
{
	static const char *const argv[] = { "sh", "-c", "echo oops >&2", NULL };
	struct run r;
	char buf[64];
	int fd;

	run_start(&r, argv, true, 0);
	fd = client(&r);
	read_all(&r, fd, buf, sizeof(buf));
	cr_assert_str_eq(buf, "oops\n");
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	close(fd);
	run_free(&r);
	assert_no_zombie();
}

Test(exec, missing_program_reported_and_peer_sees_fin)
{
	static const char *const argv[] = { "tcpkit-no-such-program", NULL };
	struct run r;
	char buf[64];
	int fd;

	run_start(&r, argv, false, 0);
	fd = client(&r);
	cr_assert_eq(read_all(&r, fd, buf, sizeof(buf)), 0);
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	cr_assert_eq(r.exits[0].pid, 0);
	cr_assert_eq(r.exits[0].spawn_err, -ENOENT);
	close(fd);
	run_free(&r);
	assert_no_zombie();
}

Test(exec, max_children_makes_the_next_wait)
{
	/* Each child answers, then waits for its client's FIN. */
	static const char *const argv[] = { "sh", "-c",
					    "echo hi; cat >/dev/null", NULL };
	struct run r;
	struct pollfd p;
	char buf[64];
	int a, b;

	run_start(&r, argv, false, 1);
	a = client(&r);
	b = client(&r);
	RUN_UNTIL(r.loop, 5000, tk_exec_running(r.x) == 1);
	cr_assert_eq(read(a, buf, 3), 3);
	/* The second is accepted but has no child while the first runs. */
	t_run_for(r.loop, 300);
	p = (struct pollfd){ .fd = b, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 0), 0, "the second got a child too soon");
	cr_assert_eq(tk_exec_running(r.x), 1);
	cr_assert_eq(shutdown(a, SHUT_WR), 0);
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	cr_assert_eq(shutdown(b, SHUT_WR), 0);
	read_all(&r, b, buf, sizeof(buf));
	cr_assert_str_eq(buf, "hi\n");
	RUN_UNTIL(r.loop, 5000, r.nexits == 2);
	close(a);
	close(b);
	run_free(&r);
	assert_no_zombie();
}

Test(exec, free_terminates_and_reaps_running_children)
{
	static const char *const argv[] = { "sleep", "60", NULL };
	struct run r;
	uint64_t t0;
	int fd;

	run_start(&r, argv, false, 0);
	fd = client(&r);
	RUN_UNTIL(r.loop, 5000, tk_exec_running(r.x) == 1);
	t0 = t_now_ms();
	run_free(&r);
	/* SIGTERM ends sleep at once: no wait for the SIGKILL. */
	cr_assert_lt(t_now_ms() - t0, 1500);
	assert_no_zombie();
	close(fd);
}

static void
detach_open(struct tk_conn *c, void *arg)
{
	int *fd = arg;

	cr_assert_eq(tk_conn_detach(c, fd), 0);
}

static int
detach_open_cb(struct tk_conn *c, void *arg)
{
	detach_open(c, arg);
	return 0;
}

static void
detach_close(struct tk_conn *c, int err, void *arg)
{
	(void)c;
	cr_assert_eq(err, 0);
	*((int *)arg + 1) = 1;
}

Test(exec, detach_hands_over_the_socket_without_fin)
{
	static const struct tk_service svc = {
		.name = "detach",
		.open = detach_open_cb,
		.close = detach_close,
	};
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s;
	struct tk_addr a;
	struct pollfd p;
	int got[2] = { -1, 0 }, fd;
	char buf[8];

	s = t_server_new(loop, NULL, &svc, got);
	cr_assert_eq(tk_addr_parse("127.0.0.1:0", 0, &a), 0);
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	cr_assert_eq(tk_server_start(s), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(fd, &tk_server_addr(s, 0)->u.sa,
			     tk_server_addr(s, 0)->len),
		     0);
	RUN_UNTIL(loop, 5000, got[1] == 1);
	cr_assert_geq(got[0], 0);
	/* The connection is gone, the stream is not: no FIN, no reset. */
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 100), 0);
	cr_assert_eq(write(got[0], "ok", 2), 2);
	cr_assert_eq(read(fd, buf, sizeof(buf)), 2);
	close(got[0]);
	cr_assert_eq(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	tk_server_free(s);
	tk_loop_free(loop);
}

/*
 * A child reaped by someone else (here: SIGCHLD ignored, so the kernel
 * reaps it) has no status to tell: it is reported as unknown, not as a
 * clean exit 0.
 */
Test(exec, status_of_a_child_reaped_elsewhere_is_unknown)
{
	static const char *const argv[] = { "sh", "-c", "exit 3", NULL };
	struct run r;
	char buf[64];
	int fd;

	signal(SIGCHLD, SIG_IGN);
	run_start(&r, argv, false, 0);
	fd = client(&r);
	cr_assert_eq(read_all(&r, fd, buf, sizeof(buf)), 0);
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	cr_assert_gt(r.exits[0].pid, 0);
	cr_assert_eq(r.exits[0].status, TK_EXEC_STATUS_UNKNOWN, "status %d",
		     r.exits[0].status);
	close(fd);
	run_free(&r);
	signal(SIGCHLD, SIG_DFL);
}

/* pidfd_open(2) fails with ENOSYS from now on, as on Linux before 5.3. */
static void
no_pidfds(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
		cr_skip_test("no seccomp filters here (%s): pidfds cannot be "
			     "refused",
			     strerror(errno));
	cr_assert_lt(syscall(SYS_pidfd_open, getpid(), 0), 0);
	cr_assert_eq(errno, ENOSYS);
}

/*
 * Without pidfds children are looked for by a timer: it runs while there
 * is a child to look for, and stops with the last (the loop would wake
 * every 100 ms for ever).
 */
Test(exec, poll_timer_without_pidfds_stops_with_the_last_child)
{
	static const char *const argv[] = { "sh", "-c", "exit 3", NULL };
	struct run r;
	char buf[64];
	size_t timers;
	int fd;

	no_pidfds();
	run_start(&r, argv, false, 0);
	timers = tk__loop_heap(r.loop)->n;
	fd = client(&r);
	RUN_UNTIL(r.loop, 5000, tk_exec_running(r.x) == 1 || r.nexits == 1);
	cr_assert_eq(read_all(&r, fd, buf, sizeof(buf)), 0);
	RUN_UNTIL(r.loop, 5000, r.nexits == 1);
	cr_assert(WIFEXITED(r.exits[0].status));
	cr_assert_eq(WEXITSTATUS(r.exits[0].status), 3);
	cr_assert_eq(tk_exec_running(r.x), 0);
	cr_assert_eq(tk__loop_heap(r.loop)->n, timers,
		     "%zu timers running, %zu before the child",
		     tk__loop_heap(r.loop)->n, timers);
	close(fd);
	run_free(&r);
	assert_no_zombie();
}
