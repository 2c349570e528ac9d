/* basic_server.c: tutorial 2's server on the built-in basic service. */
#define _POSIX_C_SOURCE 200809L /* localtime_r() */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "tcpkit.h"

#define NAME "basic_server"
/* How long answers in flight may take to leave after a remote shutdown. */
#define FINISH_MS 2000

/* Local time as Python's str(datetime.datetime.now()) prints it. */
static char *
timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	/* Python leaves the microseconds out when they are zero. */
	if (tv.tv_usec != 0)
		snprintf(buf + n, len - n, ".%06ld", (long)tv.tv_usec);
	return buf;
}

/*
 * The peer as Python's str(addr) prints it: ('127.0.0.1', 54321) for IPv4,
 * ('::1', 54321, 0, 0) for IPv6 (flow label and scope too).
 */
static char *
python_addr(const struct tk_addr *a, char *buf, size_t len)
{
	char ip[TK_ADDRSTRLEN];

	tk_addr_format_ip(a, ip, sizeof(ip));
	if (tk_addr_family(a) == AF_INET6)
		snprintf(buf, len, "('%s', %u, %u, %u)", ip, tk_addr_port(a),
			 (unsigned)ntohl(a->u.in6.sin6_flowinfo),
			 (unsigned)a->u.in6.sin6_scope_id);
	else
		snprintf(buf, len, "('%s', %u)", ip, tk_addr_port(a));
	return buf;
}

/* The tutorial's accept loop logged every client: the server tells us. */
static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	char who[TK_ADDRSTRLEN + 32], ts[64];

	(void)s;
	(void)c;
	(void)arg;
	if (ev == TK_SERVER_OPEN)
		printf("Got a connection from [%s] at [%s]\n",
		       python_addr(peer, who, sizeof(who)),
		       timestamp(ts, sizeof(ts)));
	else if (ev == TK_SERVER_ERROR)
		fprintf(stderr, NAME ": accept: %s\n", tk_strerror(err));
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	int *stopped_by = arg;

	*stopped_by = signo;
	tk_loop_stop(loop);
}

/*
 * After "shutdown" the loop stopped at once, maybe before the answer
 * ("You told me to shut down!") left: let the connections still open
 * finish, for a bounded time.
 */
static void
finish_answers(struct tk_loop *loop, struct tk_server *srv)
{
	struct tk_server_stats st;
	uint64_t deadline;

	tk_loop_update_time(loop);
	deadline = tk_loop_now(loop) + FINISH_MS;
	for (;;) {
		tk_server_get_stats(srv, &st);
		if (st.active == 0 || tk_loop_now(loop) >= deadline)
			return;
		if (tk_loop_run_once(loop, 50) < 0)
			return;
	}
}

int
main(int argc, char **argv)
{
	const char *port_text = argc > 1 ? argv[1] : "60000";
	const char *ip = argc > 2 ? argv[2] : "127.0.0.1";
	/* "shutdown" only from this machine: the tutorial took it from all. */
	struct tk_basic_opts basic = { .allow_remote_shutdown = false };
	struct tk_server_opts opts;
	struct tk_server *srv;
	struct tk_loop *loop;
	struct tk_addr addr;
	char where[TK_ADDRSTRLEN];
	int err, stopped_by = 0;
	uint16_t port;

	if (argc > 3) {
		fprintf(stderr, "usage: " NAME " [PORT [ADDRESS]]\n");
		return EXIT_FAILURE;
	}
	if ((err = tk_port_parse(port_text, &port)) < 0) {
		fprintf(stderr, NAME ": port %s: %s\n", port_text,
			tk_strerror(err));
		return EXIT_FAILURE;
	}
	/*
	 * Which interface: 127.0.0.1 (the default) lets in this machine
	 * only; an interface's address (see the interfaces example) lets in
	 * its network; 0.0.0.0, the tutorial's '', lets in every interface.
	 */
	if ((err = tk_addr_from_ip(ip, port, &addr)) < 0) {
		fprintf(stderr, NAME ": address %s: %s\n", ip,
			tk_strerror(err));
		return EXIT_FAILURE;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	if ((err = tk_loop_new(&loop)) < 0) {
		fprintf(stderr, NAME ": event loop: %s\n", tk_strerror(err));
		return EXIT_FAILURE;
	}
	/*
	 * The tutorial's server could not catch Ctrl-C while blocked in
	 * accept(); on a loop a signal is just another event.
	 */
	if ((err = tk_loop_signal(loop, SIGINT, on_signal, &stopped_by)) < 0 ||
	    (err = tk_loop_signal(loop, SIGTERM, on_signal, &stopped_by)) < 0) {
		fprintf(stderr, NAME ": signals: %s\n", tk_strerror(err));
		goto out_free_loop;
	}

	/* SO_REUSEADDR, which the tutorial sets by hand, is always on. */
	tk_server_opts_init(&opts);
	opts.on_event = on_event;
	if ((err = tk_server_new(loop, &opts, &tk_service_basic, &basic,
				 &srv)) < 0) {
		fprintf(stderr, NAME ": server: %s\n", tk_strerror(err));
		goto out_free_loop;
	}
	if ((err = tk_server_listen(srv, &addr, false)) < 0) {
		/* Ports below 1024 need root: that is EACCES. */
		fprintf(stderr, NAME ": listen %s: %s\n",
			tk_addr_format(&addr, where, sizeof(where)),
			tk_strerror(err));
		goto out_free_server;
	}
	if ((err = tk_server_start(srv)) < 0) {
		fprintf(stderr, NAME ": start: %s\n", tk_strerror(err));
		goto out_free_server;
	}
	fprintf(stderr, "listening on %s\n",
		tk_addr_format(tk_server_addr(srv, 0), where, sizeof(where)));

	/* Until a signal, or the service asks to stop ("shutdown"). */
	err = tk_loop_run(loop);
	if (err < 0) {
		printf("Execution ended because of [%s]\n", tk_strerror(err));
	} else if (tk_server_stopping(srv)) {
		printf("Execution ended because of [Remote user initiated "
		       "shutdown.]\n");
		finish_answers(loop, srv);
	} else if (stopped_by == SIGINT) {
		printf("User pressed Ctrl-C, stopping.\n");
	} else {
		printf("Terminated (SIGTERM), stopping.\n");
	}

out_free_server:
	tk_server_free(srv);
out_free_loop:
	tk_loop_free(loop);
	return err == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
