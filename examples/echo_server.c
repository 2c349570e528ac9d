/* echo_server.c: tutorial 1's threaded server retold on one event loop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

#define NAME	 "echo_server"
#define GREETING "Welcome to the server. Type something and hit enter\n"
#define OK	 "OK..."

/*
 * The tutorial's clientthread(), as callbacks.  A thread per client would
 * block in recv(); here one loop watches every client and calls us when
 * one of them has something for us, so thousands cost no threads.
 */
static int
on_open(struct tk_conn *c, void *arg)
{
	(void)arg;
	/* Each answer is a chunk and the "OK..." before it: keep room. */
	tk_conn_reserve_output(c, sizeof(OK) - 1);
	/* The first thing every client sees.  A negative return closes. */
	return tk_conn_write(c, GREETING, sizeof(GREETING) - 1);
}

static void
on_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	int err;

	(void)arg;
	if (n == TK_EOF) {
		/* The client is done talking: finish our side and close. */
		tk_conn_end(c);
		return;
	}
	/*
	 * "OK..." and then what came, as the tutorial's b'OK...' + data.
	 * Two writes are fine: TCP is a byte stream, it keeps no boundary
	 * between them (nor between the client's chunks, so a client must
	 * not count on getting one "OK..." per line it typed).
	 */
	err = tk_conn_write(c, OK, sizeof(OK) - 1);
	if (err == 0)
		err = tk_conn_write(c, data, (size_t)n);
	if (err < 0)
		tk_conn_close(c, err); /* a no-op if it closed already */
}

static void
on_close(struct tk_conn *c, int err, void *arg)
{
	char peer[TK_ADDRSTRLEN];

	(void)arg;
	/* Connections we close when stopping end with -ECANCELED: no news. */
	if (err != 0 && err != -ECANCELED)
		fprintf(stderr, NAME ": connection %s: %s\n",
			tk_addr_format(tk_conn_peer(c), peer, sizeof(peer)),
			tk_strerror(err));
}

static const struct tk_service welcome = {
	.name = "welcome",
	.open = on_open,
	.data = on_data,
	.close = on_close,
};

/* The tutorial's accept loop printed each client; the server tells us. */
static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	char who[TK_ADDRSTRLEN];

	(void)s;
	(void)c;
	(void)arg;
	if (ev == TK_SERVER_OPEN)
		printf("Connected with %s\n",
		       tk_addr_format(peer, who, sizeof(who)));
	else if (ev == TK_SERVER_ERROR)
		/* Out of fds, say: the server pauses and goes on. */
		fprintf(stderr, NAME ": accept: %s\n", tk_strerror(err));
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	int *stopped_by = arg;

	*stopped_by = signo;
	tk_loop_stop(loop);
}

int
main(int argc, char **argv)
{
	const char *port_text = argc > 1 ? argv[1] : "9999";
	struct tk_server_opts opts;
	struct tk_server *srv;
	struct tk_loop *loop;
	struct tk_addr addr;
	char where[TK_ADDRSTRLEN];
	int err, stopped_by = 0;
	uint16_t port;

	if (argc > 2) {
		fprintf(stderr, "usage: " NAME " [PORT]\n");
		return EXIT_FAILURE;
	}
	/* Port 0 asks the system for any free port: tests use that. */
	if ((err = tk_port_parse(port_text, &port)) < 0) {
		fprintf(stderr, NAME ": port %s: %s\n", port_text,
			tk_strerror(err));
		return EXIT_FAILURE;
	}
	/* Whoever reads our output through a pipe sees each line at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	if ((err = tk_loop_new(&loop)) < 0) {
		fprintf(stderr, NAME ": event loop: %s\n", tk_strerror(err));
		return EXIT_FAILURE;
	}
	/*
	 * Ctrl-C (SIGINT) and kill (SIGTERM) become loop events, so they
	 * stop us cleanly even while we wait: the tutorial's server could
	 * only be killed.
	 */
	if ((err = tk_loop_signal(loop, SIGINT, on_signal, &stopped_by)) < 0 ||
	    (err = tk_loop_signal(loop, SIGTERM, on_signal, &stopped_by)) < 0) {
		fprintf(stderr, NAME ": signals: %s\n", tk_strerror(err));
		goto out_free_loop;
	}

	tk_server_opts_init(&opts);
	opts.backlog = 10; /* the tutorial's s.listen(10) */
	opts.on_event = on_event;
	if ((err = tk_server_new(loop, &opts, &welcome, NULL, &srv)) < 0) {
		fprintf(stderr, NAME ": server: %s\n", tk_strerror(err));
		goto out_free_loop;
	}
	/*
	 * Loopback only: the tutorial binds '' (every interface), which lets
	 * any machine that can reach us in.  "0.0.0.0" would do that.
	 */
	(void)tk_addr_from_ip("127.0.0.1", port, &addr);
	if ((err = tk_server_listen(srv, &addr, false)) < 0) {
		/* A port in use (EADDRINUSE) or below 1024 (EACCES). */
		fprintf(stderr, NAME ": listen %s: %s\n",
			tk_addr_format(&addr, where, sizeof(where)),
			tk_strerror(err));
		goto out_free_server;
	}
	if ((err = tk_server_start(srv)) < 0) {
		fprintf(stderr, NAME ": start: %s\n", tk_strerror(err));
		goto out_free_server;
	}
	/* The real port, which port 0 leaves to the system to choose. */
	fprintf(stderr, "listening on %s\n",
		tk_addr_format(tk_server_addr(srv, 0), where, sizeof(where)));

	/* Serve until a signal: the tutorial's "while 1: accept()". */
	err = tk_loop_run(loop);
	if (err < 0)
		fprintf(stderr, NAME ": event loop: %s\n", tk_strerror(err));
	else
		fprintf(stderr, "stopping on %s\n",
			stopped_by == SIGINT ? "SIGINT" : "SIGTERM");

out_free_server:
	/* Closes every client connection (they see the end of stream). */
	tk_server_free(srv);
out_free_loop:
	tk_loop_free(loop);
	return err == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
