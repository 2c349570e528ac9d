/* conn_int.h: struct tk_conn, shared by conn.c (a connection's life) and
 * connect.c (its connect phase); private to src/. */
#ifndef TK_CONN_INT_H
#define TK_CONN_INT_H

#include "internal.h"

enum conn_state {
	ST_CONNECTING,
	ST_PROXY,     /* connected to a proxy, asking it for the tunnel */
	ST_HANDSHAKE, /* connected, the transport's handshake under way */
	ST_OPEN,
	ST_CLOSED,
};

enum {
	F_EOF = 1u << 0,	  /* the peer's FIN has been read */
	F_SHUT_WANT = 1u << 1,	  /* send FIN once output is written */
	F_SHUT_DONE = 1u << 2,	  /* FIN sent */
	F_ENDING = 1u << 3,	  /* tk_conn_end(): discard input, close */
	F_PAUSED = 1u << 4,	  /* tk_conn_pause() */
	F_BACKPRESSURE = 1u << 5, /* output above max_pending */
	F_SOCKOPTS = 1u << 6,	/* socket options set (a server's: inherited) */
	F_DRAIN_WANT = 1u << 7, /* output went above drain_lowat: tell drain */
	F_EOF_TOLD = 1u << 8,	/* the service had its TK_EOF (line framing) */
	F_RAW = 1u << 9,	/* the socket's I/O is raw_io's (relay.c) */
	F_PEER_MAY_STOP = 1u << 10, /* tk__conn_peer_may_stop() */
};

struct connecting;   /* connect.c */
struct resolving;    /* connect.c */
struct tk__proxying; /* proxy_conn.c */

/*
 * Kept small: an idle connection costs this struct and nothing else (no
 * buffers until output waits, the read buffer belongs to the loop).
 */
struct tk_conn {
	struct tk_loop *loop;
	struct tk_server *server; /* handed back only (tk_conn_server()) */
	const struct tk__conn_owner *owner; /* NULL: a client's */
	const struct tk_service *svc;
	void *arg;
	void *data;
	const struct tk__transport *tp;
	void *tp_state;
	int fd;
	enum conn_state state;
	unsigned flags;
	int close_err;
	struct tk_buf out;
	/* Line framing: a partial line, or lines held by a pause; NULL
	 * until the first byte is held. */
	struct tk_buf *lines;
	struct tk_conn_opts opts;
	/*
	 * One timer, part of c (no allocation of its own): connect deadline,
	 * then idle timeout, then linger.
	 */
	struct tk_timer timer;
	uint64_t last_active;
	uint64_t opened_at;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t deadline; /* loop time; 0: none */
	int deadline_err;
	int end_err; /* reported when a tk_conn_end() finishes */
	unsigned worker;
	struct tk__counters *ctr; /* the worker's, for a server's connection */
	uint64_t unanswered_ns; /* first byte read not yet answered; 0: none */
	struct tk_addr peer;
	/*
	 * Looked up and allocated on first use (tk_conn_local()): rarely
	 * asked for, and a tk_addr is big since it holds UNIX names.
	 */
	struct tk_addr *local;
	struct tk_addr *via; /* PROXY protocol: the balancer (server_pp.c) */
	struct connecting *cx;
	struct resolving *rs; /* tk_conn_connect_host()'s name, if resolving */
	struct tk__proxying *px; /* the proxy to go through, until through */
	struct tk_conn *next, *prev; /* the server's list */
	struct tk__lnode node;	     /* the loop's, until closed */
	struct tk__defer defer;
	struct tk__defer read_defer; /* reads the transport's buffered bytes */
	char *errmsg; /* detail of the last error, NULL if none */
	/* F_RAW: who moves the bytes, told of the socket's events. */
	tk_io_cb raw_io;
	void *raw_arg;
};

/* conn.c */
struct tk_conn *tk__conn_new(struct tk_loop *loop,
			     const struct tk_conn_opts *opts,
			     const struct tk_service *svc, void *arg);
/*
 * Give c the transport of opts.tls (a struct tk__layer), unless it has one
 * other than plain TCP already: 0 or a negative code.
 */
int tk__conn_attach_layer(struct tk_conn *c, const char *servername);
/* Keep "ADDR: why" ("why" when a is NULL) as the last error's detail. */
void tk__conn_set_error(struct tk_conn *c, const struct tk_addr *a, int err);

/*
 * relay.c takes connections over.  The service (and its arg) is swapped,
 * with the drain mark the new one wants.  A raw connection's socket is
 * the relay's to read and write (splice): conn.c keeps the fd, its watch,
 * timer and close, and hands every event to io(arg); nothing of its own
 * is read or written until the close.  tk__conn_raw_ok(): may c go raw
 * (open, plain TCP, nothing pending or held, neither FIN yet)?
 */
void tk__conn_set_service(struct tk_conn *c, const struct tk_service *svc,
			  void *arg, size_t drain_lowat);
bool tk__conn_raw_ok(const struct tk_conn *c);
void tk__conn_raw_begin(struct tk_conn *c, tk_io_cb io, void *arg);
/* Watch the raw socket for ev (0: nothing): 0, or closes c and errs. */
int tk__conn_raw_interest(struct tk_conn *c, unsigned ev);
/* Bytes the relay moved in and out of c: counts and idle clock. */
void tk__conn_raw_moved(struct tk_conn *c, uint64_t in, uint64_t out);
/* Send FIN on a raw socket: 0 or -errno. */
int tk__conn_raw_shutdown(struct tk_conn *c);
/*
 * c's output is to hold up to `hold` bytes of another connection's input
 * (a copying relay): raise its own limits so that neither its reading
 * (max_pending) nor its writes (max_output) stop short of that.
 */
void tk__conn_hold_output(struct tk_conn *c, size_t hold);
/*
 * c's peer (a local program) may stop reading and go: a write that fails
 * with EPIPE or ECONNRESET ends c's output only, and c reads on what the
 * peer wrote before; the reset a read meets after that is its end (EOF).
 */
void tk__conn_peer_may_stop(struct tk_conn *c);
/* Has c read its peer's FIN (told to whichever service c had then)? */
bool tk__conn_eof_read(const struct tk_conn *c);

/* connect.c */
/* The connect phase is over (won or lost): its attempts and state go. */
void tk__connect_done(struct tk_conn *c);
/* An address still being tried, for a timeout's message; NULL if none. */
const struct tk_addr *tk__connect_trying(const struct tk_conn *c);

/* proxy_conn.c */
/*
 * A copy of p (NULL: out of memory, or host or port too long) for a
 * tunnel to host and port.
 */
struct tk__proxying *tk__proxy_new(const struct tk_proxy *p, const char *host,
				   const char *port);
/* Free px, its secrets wiped; NULL does nothing. */
void tk__proxy_free(struct tk__proxying *px);
const struct tk_proxy *tk__proxy_of(const struct tk__proxying *px);
/* SOCKS5 (not 5h) to a name: the name is resolved here, not by the proxy. */
bool tk__proxy_resolves_here(const struct tk__proxying *px);
/* Whether the target's port is a number already (not a service name). */
bool tk__proxy_has_port(const struct tk__proxying *px);
/* The target as resolved: host (NULL: keep the name) and port. */
void tk__proxy_set_target(struct tk__proxying *px, const char *host,
			  uint16_t port);
/*
 * One step of c->px's handshake on c->fd: 0 once the tunnel is open,
 * -EAGAIN with *want set, or an error code with the detail set.
 */
int tk__proxy_step(struct tk_conn *c, unsigned *want);

#endif
