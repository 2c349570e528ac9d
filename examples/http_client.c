/* http_client.c: tutorial 1's client: resolve, connect, GET /, print. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

#define NAME "http_client"

struct client {
	const char *host;
	const char *port;
	uint16_t portnum;
	/* "host:port" (or "[v6]:port") for messages and the Host header. */
	char where[TK_HOSTLEN + 16];
	char request[TK_HOSTLEN + 128];
	size_t request_len;
	/* What we were doing when an error came: says which step failed. */
	const char *doing;
	int err; /* how the connection ended: 0 or a negative code */
};

/*
 * The tutorial sends a bare "GET / HTTP/1.1\r\n\r\n".  HTTP/1.1 requires a
 * Host header (RFC 9112 section 3.2): one IP address serves many web
 * sites, and the name is how the server knows which one we want; without
 * it a server may answer 400 Bad Request.  "Connection: close" asks the
 * server to close after its reply, so "read until the server closes" is
 * exactly "read the whole reply".  Returns 0, or TK_ETOOBIG if the request
 * does not fit.
 */
static int
build_request(struct client *cl)
{
	bool v6 = strchr(cl->host, ':') != NULL;
	char name[TK_HOSTLEN + 4];
	int n;

	/* An IPv6 literal is bracketed so that its colons stay apart. */
	n = snprintf(name, sizeof(name), "%s%s%s", v6 ? "[" : "", cl->host,
		     v6 ? "]" : "");
	if (n < 0 || (size_t)n >= sizeof(name))
		return TK_ETOOBIG;
	snprintf(cl->where, sizeof(cl->where), "%s:%u", name, cl->portnum);
	/* Host names the port only when it is not the scheme's default. */
	n = snprintf(cl->request, sizeof(cl->request),
		     "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
		     cl->portnum == 80 ? name : cl->where);
	if (n < 0 || (size_t)n >= sizeof(cl->request))
		return TK_ETOOBIG;
	cl->request_len = (size_t)n;
	return 0;
}

/*
 * Connected: send the whole request.  tk_conn_write() queues what the
 * kernel does not take at once and sends it later, as Python's sendall().
 */
static int
on_open(struct tk_conn *c, void *arg)
{
	struct client *cl = arg;
	char addr[TK_ADDRSTRLEN];
	int err;

	fprintf(stderr, "Connected to %s on %s\n", cl->host,
		tk_addr_format(tk_conn_peer(c), addr, sizeof(addr)));
	cl->doing = "send";
	err = tk_conn_write(c, cl->request, cl->request_len);
	if (err < 0)
		return err; /* the connection closes; on_close reports it */
	fprintf(stderr, "Request sent\n");
	cl->doing = "receive";
	return 0;
}

/*
 * Part of the reply.  The tutorial reads once (4096 bytes) and so prints
 * the first piece only: TCP delivers a stream in pieces of any size, so
 * we print each piece as it comes, until the server closes.
 */
static void
on_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct client *cl = arg;

	if (n == TK_EOF) {
		/* The server is done; so are we: end gracefully. */
		tk_conn_end(c);
		return;
	}
	if (fwrite(data, 1, (size_t)n, stdout) != (size_t)n ||
	    fflush(stdout) != 0) {
		cl->doing = "write to stdout";
		tk_conn_close(c, errno ? -errno : -EIO);
	}
}

/* The end, whichever way it came: connect failed, error, or done. */
static void
on_close(struct tk_conn *c, int err, void *arg)
{
	struct client *cl = arg;

	cl->err = err;
	if (err != 0)
		fprintf(stderr, NAME ": %s %s: %s\n", cl->doing, cl->where,
			tk_strerror(err));
	tk_loop_stop(tk_conn_loop(c));
}

static const struct tk_service http_client = {
	.name = "http_client",
	.open = on_open,
	.data = on_data,
	.close = on_close,
};

int
main(int argc, char **argv)
{
	struct client cl = { .doing = "connect" };
	struct tk_addrlist *addrs;
	struct tk_loop *loop;
	struct tk_conn *conn;
	char ip[TK_ADDRSTRLEN];
	int err;

	if (argc > 3) {
		fprintf(stderr, "usage: " NAME " [HOST [PORT]]\n");
		return EXIT_FAILURE;
	}
	cl.host = argc > 1 ? argv[1] : "www.google.com";
	cl.port = argc > 2 ? argv[2] : "80";
	/* A number, checked here: tk_resolve() would take a service name. */
	if ((err = tk_port_parse(cl.port, &cl.portnum)) < 0) {
		fprintf(stderr, NAME ": port %s: %s\n", cl.port,
			tk_strerror(err));
		return EXIT_FAILURE;
	}
	if ((err = build_request(&cl)) < 0) {
		fprintf(stderr, NAME ": host %s: %s\n", cl.host,
			tk_strerror(err));
		return EXIT_FAILURE;
	}

	/*
	 * Step 2: name to addresses.  The tutorial asks for one IPv4 address
	 * (gethostbyname); we take every address, IPv4 and IPv6, and let
	 * tk_conn_connect() try them in turn.
	 */
	err = tk_resolve(cl.host, cl.port, AF_UNSPEC, 0, &addrs);
	if (err < 0) {
		fprintf(stderr, NAME ": %s could not be resolved: %s\n",
			cl.host, tk_strerror(err));
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < addrs->count; i++)
		fprintf(stderr, "IP address of %s is %s\n", cl.host,
			tk_addr_format_ip(&addrs->addrs[i], ip, sizeof(ip)));

	/* Step 3: connect.  Everything from here on happens in callbacks. */
	if ((err = tk_loop_new(&loop)) < 0) {
		fprintf(stderr, NAME ": event loop: %s\n", tk_strerror(err));
		goto out_free_addrs;
	}
	err = tk_conn_connect(loop, addrs, NULL, &http_client, &cl, &conn);
	if (err < 0) {
		/* Failed at once: no callback will run. */
		fprintf(stderr, NAME ": connect %s: %s\n", cl.where,
			tk_strerror(err));
		goto out_free_loop;
	}
	/* on_close stops the loop; cl.err then says how it went. */
	err = tk_loop_run(loop);
	if (err < 0)
		fprintf(stderr, NAME ": event loop: %s\n", tk_strerror(err));
	else
		err = cl.err;

out_free_loop:
	tk_loop_free(loop);
out_free_addrs:
	tk_addrlist_free(addrs);
	return err == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
