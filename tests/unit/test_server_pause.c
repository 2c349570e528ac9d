/* test_server_pause.c: tk_server_pause(): a server stops accepting while
 * another serves on the same listening sockets (a restart's hand-over). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>

#include "helpers.h"

TestSuite(server_pause, .timeout = 30);

static struct tk_server *
echo_server(struct tk_loop *loop)
{
	struct tk_server_opts o;

	tk_server_opts_init(&o);
	return t_server_new(loop, &o, &tk_service_echo, NULL);
}

static uint64_t
accepted(const struct tk_server *s)
{
	struct tk_server_stats st;

	tk_server_get_stats(s, &st);
	return st.accepted;
}

/* n clients on loop send "new\n" and half-close: none is answered there. */
static void
clients_wait(struct tk_loop *loop, const struct tk_addr *a, struct peer *p,
	     int n)
{
	for (int i = 0; i < n; i++) {
		peer_connect(&p[i], loop, a);
		peer_send_str(&p[i], "new\n");
		peer_shutdown(&p[i]);
	}
	/* A server on loop that still accepted would take them now. */
	t_run_for(loop, 200);
	for (int i = 0; i < n; i++)
		cr_assert_eq(p[i].in_len, 0);
}

/* The clients served by the server on other (run in turns with loop). */
static void
served_by(struct tk_loop *other, struct tk_loop *loop, struct peer *p, int n)
{
	uint64_t end = t_now_ms() + 5000;

	for (int i = 0; i < n; i++) {
		while (!p[i].eof) {
			cr_assert(t_now_ms() < end, "client %d not served", i);
			cr_assert_eq(tk_loop_run_once(other, 5), 0);
			cr_assert_eq(tk_loop_run_once(loop, 5), 0);
		}
		cr_assert_eq(p[i].in_len, strlen("new\n"));
		peer_free(&p[i]);
	}
}

/* The next server, on its own loop, on another fd of old's socket. */
static struct tk_server *
next_server(struct tk_loop *loop2, struct tk_server *old)
{
	struct tk_server *next = echo_server(loop2);
	int fd;

	cr_assert_eq(tk_server_listener_fds(old, &fd, 1), 1);
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(tk_server_listen_fd(next, fd), 0);
	return next;
}

Test(server_pause, the_next_server_accepts_and_open_connections_go_on)
{
	enum { N = 8 };
	struct tk_loop *loop = t_loop_new(), *loop2 = t_loop_new();
	struct tk_server *old = echo_server(loop), *next;
	struct tk_addr a = t_addr("127.0.0.1", 0);
	struct peer open, p[N];

	cr_assert_eq(tk_server_listen(old, &a, false), 0);
	a = *tk_server_addr(old, 0);
	cr_assert_eq(tk_server_start(old), 0);
	peer_connect(&open, loop, &a);
	peer_send_str(&open, "before\n");
	RUN_UNTIL(loop, 5000, open.in_len == strlen("before\n"));
	next = next_server(loop2, old);
	cr_assert_eq(tk_server_start(next), 0);
	cr_assert_eq(tk_server_pause(old), 0);
	/* Every new client waits for the next one, none is lost... */
	clients_wait(loop, &a, p, N);
	cr_assert_eq(accepted(old), 1);
	served_by(loop2, loop, p, N);
	cr_assert_eq(accepted(next), N);
	/* ...and the paused one's connection goes on until its drain. */
	peer_send_str(&open, "after\n");
	RUN_UNTIL(loop, 5000,
		  open.in_len == strlen("before\n") + strlen("after\n"));
	tk_server_drain(old);
	RUN_UNTIL(loop, 5000, open.eof);
	peer_free(&open);
	tk_server_free(old);
	/* The socket lives on in the next server. */
	clients_wait(loop, &a, p, 1);
	served_by(loop2, loop, p, 1);
	tk_server_free(next);
	tk_loop_free(loop2);
	tk_loop_free(loop);
}

Test(server_pause, a_server_paused_before_its_start_never_accepts)
{
	struct tk_loop *loop = t_loop_new(), *loop2 = t_loop_new();
	struct tk_server *old = echo_server(loop), *next;
	struct tk_addr a = t_addr("127.0.0.1", 0);
	struct peer p[4];

	cr_assert_eq(tk_server_listen(old, &a, false), 0);
	a = *tk_server_addr(old, 0);
	next = next_server(loop2, old);
	cr_assert_eq(tk_server_pause(old), 0);
	cr_assert_eq(tk_server_start(old), 0);
	cr_assert_eq(tk_server_start(next), 0);
	clients_wait(loop, &a, p, 4);
	served_by(loop2, loop, p, 4);
	cr_assert_eq(accepted(old), 0);
	cr_assert_eq(accepted(next), 4);
	tk_server_free(old);
	tk_server_free(next);
	tk_loop_free(loop2);
	tk_loop_free(loop);
}
