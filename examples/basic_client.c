/* basic_client.c: tutorial 2's client: greeting, message, reply. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

#define NAME "basic_client"
/* The tutorial's recv(4096) is the most a greeting may be. */
#define MAX_GREETING 4096
/* Room for the reply: the basic server's is at most about 4 KiB. */
#define MAX_REPLY (64 * 1024)

enum phase {
	WAIT_GREETING, /* connected, the server speaks first */
	WAIT_REPLY,    /* message sent, reading until the server closes */
	DONE,	       /* reply printed */
};

struct client {
	const char *message;
	char where[TK_ADDRSTRLEN];
	enum phase phase;
	struct tk_buf in; /* what arrived and is not printed yet */
	bool sent;	  /* "Successfully sent" printed */
	const char *doing;
	int err;
};

/* Bytes as they came, NULs and all: printf's %s would stop at a NUL. */
static void
print_message(const char *label, const struct tk_buf *b, size_t len)
{
	printf("%s [", label);
	if (len > 0)
		(void)fwrite(tk_buf_peek(b), 1, len, stdout);
	printf("]\n");
}

static void
report_sent(struct client *cl)
{
	if (!cl->sent)
		printf("Successfully sent message [%s]\n", cl->message);
	cl->sent = true;
}

/*
 * The greeting is complete: print it, then send our message.  The line
 * is printed with its '\n' inside the brackets, exactly as the tutorial's
 * client prints what recv() gave it, so the two can be compared.
 */
static void
greeted(struct tk_conn *c, struct client *cl, size_t used)
{
	int err;

	print_message("Got Message", &cl->in, used);
	tk_buf_consume(&cl->in, used);
	cl->phase = WAIT_REPLY;
	cl->doing = "send";
	err = tk_conn_write(c, cl->message, strlen(cl->message));
	if (err < 0) {
		tk_conn_close(c, err);
		return;
	}
	/*
	 * Our FIN tells the server the message is complete: TCP keeps no
	 * message boundaries, and an empty message would otherwise leave
	 * both sides waiting.  We can still read the reply.
	 */
	tk_conn_shutdown(c);
	/* Written to the kernel now, or later: then on_drain says so. */
	if (tk_conn_pending(c) == 0)
		report_sent(cl);
	cl->doing = "receive";
}

/* Connected: the server speaks first, so we listen. */
static int
on_open(struct tk_conn *c, void *arg)
{
	struct client *cl = arg;

	(void)c;
	cl->doing = "receive";
	return 0;
}

/*
 * TCP may split the greeting in pieces or join it with what follows, so
 * we collect bytes and cut at the greeting's '\n' instead of trusting one
 * recv() to hold exactly one message as the tutorial does.
 */
static void
on_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct client *cl = arg;
	size_t line_len;
	ssize_t used;
	int err;

	if (n == TK_EOF) {
		if (cl->phase == WAIT_GREETING) {
			tk_conn_close(c, TK_ETRUNCATED);
			return;
		}
		report_sent(cl);
		print_message("Got Second Message", &cl->in,
			      tk_buf_len(&cl->in));
		cl->phase = DONE;
		tk_conn_end(c);
		return;
	}
	if ((err = tk_buf_append(&cl->in, data, (size_t)n)) < 0) {
		tk_conn_close(c, err == -ENOBUFS ? TK_ETOOBIG : err);
		return;
	}
	if (cl->phase != WAIT_GREETING)
		return; /* the reply is printed whole, at the end */
	used = tk_line_parse(tk_buf_peek(&cl->in), tk_buf_len(&cl->in),
			     MAX_GREETING, &line_len);
	if (used < 0)
		tk_conn_close(c, (int)used);
	else if (used > 0)
		greeted(c, cl, (size_t)used);
}

static void
on_drain(struct tk_conn *c, void *arg)
{
	(void)c;
	report_sent(arg);
}

static void
on_close(struct tk_conn *c, int err, void *arg)
{
	struct client *cl = arg;

	/* An orderly close before the reply is a truncated exchange too. */
	if (err == 0 && cl->phase != DONE)
		err = TK_ETRUNCATED;
	cl->err = err;
	if (err != 0)
		fprintf(stderr, NAME ": %s %s: %s\n", cl->doing, cl->where,
			tk_strerror(err));
	tk_loop_stop(tk_conn_loop(c));
}

static const struct tk_service basic_client = {
	.name = "basic_client",
	.open = on_open,
	.data = on_data,
	.drain = on_drain,
	.close = on_close,
};

int
main(int argc, char **argv)
{
	struct client cl = { .doing = "connect" };
	const char *port_text = argc > 2 ? argv[2] : "60000";
	struct tk_addrlist list;
	struct tk_addr addr;
	struct tk_loop *loop;
	struct tk_conn *conn;
	uint16_t port;
	int err;

	if (argc > 3) {
		fprintf(stderr, "usage: " NAME " [MESSAGE [PORT]]\n");
		return EXIT_FAILURE;
	}
	if ((err = tk_port_parse(port_text, &port)) < 0) {
		fprintf(stderr, NAME ": port %s: %s\n", port_text,
			tk_strerror(err));
		return EXIT_FAILURE;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		cl.message = argv[1];
	} else {
		printf("No message specified. Defaulting to \"Hey!\"\n");
		cl.message = "Hey!";
	}
	/* The server must be on this machine, as in the tutorial. */
	(void)tk_addr_from_ip("127.0.0.1", port, &addr);
	tk_addr_format(&addr, cl.where, sizeof(cl.where));
	tk_buf_init(&cl.in, MAX_REPLY);

	if ((err = tk_loop_new(&loop)) < 0) {
		fprintf(stderr, NAME ": event loop: %s\n", tk_strerror(err));
		return EXIT_FAILURE;
	}
	/* No name to resolve: a list of one address is all connect needs. */
	list.count = 1;
	list.addrs = &addr;
	err = tk_conn_connect(loop, &list, NULL, &basic_client, &cl, &conn);
	if (err < 0) {
		fprintf(stderr, NAME ": connect %s: %s\n", cl.where,
			tk_strerror(err));
		goto out_free_loop;
	}
	err = tk_loop_run(loop);
	if (err < 0)
		fprintf(stderr, NAME ": event loop: %s\n", tk_strerror(err));
	else
		err = cl.err;
	/* Output errors (a full disk, a closed pipe) are errors too. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, NAME ": write stdout: %s\n",
			tk_strerror(errno ? -errno : -EIO));
		err = err ? err : -EIO;
	}

out_free_loop:
	tk_loop_free(loop);
	tk_buf_free(&cl.in);
	return err == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
