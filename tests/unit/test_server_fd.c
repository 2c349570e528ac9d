/* test_server_fd.c: serving on listening sockets made elsewhere
 * (tk_server_listen_fd) and handing them over (tk_server_listener_fds). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(server_fd, .timeout = 30);

static struct tk_server *
echo_server(struct tk_loop *loop, unsigned workers)
{
	struct tk_server_opts o;

	tk_server_opts_init(&o);
	o.workers = workers;
	return t_server_new(loop, &o, &tk_service_echo, NULL);
}

/* Send msg through a, and wait for it back. */
static void
echo_through(struct tk_loop *loop, const struct tk_addr *a, const char *msg)
{
	struct peer p;

	peer_connect(&p, loop, a);
	peer_send_str(&p, msg);
	peer_shutdown(&p);
	RUN_UNTIL(loop, 5000, p.eof);
	cr_assert_eq(p.in_len, strlen(msg));
	cr_assert(memcmp(p.in, msg, p.in_len) == 0);
	peer_free(&p);
}

Test(server_fd, adopted_tcp_listener_serves_with_every_worker_count)
{
	for (unsigned workers = 1; workers <= 3; workers++) {
		struct tk_loop *loop = t_loop_new();
		struct tk_server *s = echo_server(loop, workers);
		struct tk_addr bound;
		int fd = t_raw_listen("127.0.0.1", 16, &bound);
		int fds[4];

		cr_assert_eq(tk_server_listen_fd(s, fd), 0);
		cr_assert_eq(tk_server_listener_count(s), 1);
		cr_assert(tk_addr_equal(tk_server_addr(s, 0), &bound));
		/* Made non-blocking and close-on-exec. */
		cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
		cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		/* One socket, shared: handed over once. */
		cr_assert_eq(tk_server_listener_fds(s, fds, 4), 1);
		cr_assert_eq(fds[0], fd);
		cr_assert_eq(tk_server_start(s), 0);
		for (int i = 0; i < 6; i++)
			echo_through(loop, &bound, "adopted\n");
		tk_server_free(s);
		tk_loop_free(loop);
	}
}

Test(server_fd, refuses_what_is_not_a_listening_stream_socket)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = echo_server(loop, 2);
	int pipefd[2];
	int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int dgram = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct tk_addr bound;
	int fd;

	cr_assert_eq(pipe(pipefd), 0);
	cr_assert_eq(tk_server_listen_fd(s, pipefd[0]), -ENOTSOCK);
	cr_assert_eq(tk_server_listen_fd(s, sock), -EINVAL);
	cr_assert_eq(tk_server_listen_fd(s, dgram), -EINVAL);
	cr_assert_eq(tk_server_listen_fd(s, -1), -EBADF);
	cr_assert_eq(tk_server_listener_count(s), 0);
	/* Still the caller's: open. */
	cr_assert_neq(fcntl(pipefd[0], F_GETFD), -1);
	cr_assert_neq(fcntl(sock, F_GETFD), -1);
	close(pipefd[0]);
	close(pipefd[1]);
	close(sock);
	close(dgram);
	/* Too late once started. */
	fd = t_raw_listen("127.0.0.1", 4, &bound);
	cr_assert_eq(tk_server_listen_fd(s, fd), 0);
	cr_assert_eq(tk_server_start(s), 0);
	{
		int late = t_raw_listen("127.0.0.1", 4, &bound);

		cr_assert_eq(tk_server_listen_fd(s, late), -EBUSY);
		close(late);
	}
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(server_fd, listener_fds_are_one_per_worker_for_tcp_and_one_for_unix)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = echo_server(loop, 3);
	struct tk_addr a = t_addr("127.0.0.1", 0), u;
	char path[64];
	int fds[8];

	snprintf(path, sizeof(path), "@tk-test-fd-%ld", (long)getpid());
	cr_assert_eq(tk_addr_from_unix(path + 1, strlen(path + 1), true, &u),
		     0);
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	cr_assert_eq(tk_server_listen_unix(s, &u, NULL), 0);
	cr_assert_eq(tk_server_listener_fds(s, fds, 8), 4);
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			cr_assert_neq(fds[i], fds[j]);
	/* The count even when the array is short. */
	cr_assert_eq(tk_server_listener_fds(s, fds, 1), 4);
	tk_server_free(s);
	tk_loop_free(loop);
}

/*
 * The hand-over: connections waiting in the old server's queues, not yet
 * accepted, are served by the new one after the old is gone.
 */
Test(server_fd, handed_over_sockets_keep_their_waiting_connections)
{
	enum { N = 4 };
	struct tk_loop *loop = t_loop_new();
	struct tk_server *old = echo_server(loop, 2), *new;
	struct tk_addr a = t_addr("127.0.0.1", 0);
	struct peer p[N];
	int fds[4];
	size_t n;

	cr_assert_eq(tk_server_listen(old, &a, false), 0);
	a = *tk_server_addr(old, 0);
	/* Never started: whoever connects waits in a queue. */
	for (int i = 0; i < N; i++) {
		peer_connect(&p[i], loop, &a);
		peer_send_str(&p[i], "waiting\n");
		peer_shutdown(&p[i]);
	}
	n = tk_server_listener_fds(old, fds, 4);
	cr_assert_eq(n, 2);
	new = echo_server(loop, 1);
	for (size_t i = 0; i < n; i++) {
		int copy = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);

		cr_assert(copy >= 0);
		cr_assert_eq(tk_server_listen_fd(new, copy), 0);
	}
	tk_server_free(old);
	cr_assert_eq(tk_server_start(new), 0);
	for (int i = 0; i < N; i++) {
		RUN_UNTIL(loop, 5000, p[i].eof);
		cr_assert_eq(p[i].err, 0);
		cr_assert_eq(p[i].in_len, strlen("waiting\n"));
		peer_free(&p[i]);
	}
	echo_through(loop, &a, "after\n");
	tk_server_free(new);
	tk_loop_free(loop);
}
