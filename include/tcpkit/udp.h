/* tcpkit/udp.h: UDP datagram sockets on a loop, and datagram servers. */
#ifndef TCPKIT_UDP_H
#define TCPKIT_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * The largest UDP payload over IPv4 (65,535 less the IP and UDP headers);
 * IPv6 allows 65,527 on a link that carries it (loopback does).  Every
 * datagram is one message: its boundaries are kept, never merged or split.
 */
#define TK_UDP_MAX_PAYLOAD 65507u
/* A receive buffer that holds any datagram, IPv6's largest included. */
#define TK_UDP_RECV_MAX 65536u

struct tk_udp;

/*
 * One datagram received.  data holds len bytes; a datagram longer than
 * the receive buffer is cut by the kernel, and then truncated is true and
 * full_len says how long it was (MSG_TRUNC): never silent.  peer is the
 * sender.  All borrowed for the callback only.
 */
struct tk_udp_dgram {
	const void *data;
	size_t len;
	size_t full_len;
	bool truncated;
	const struct tk_addr *peer;
};

/*
 * The callbacks of a UDP socket, on its loop's thread.  recv: a datagram
 * (err 0), or an error the socket reported (d NULL): on a connected
 * socket -ECONNREFUSED is the peer's ICMP port unreachable ("nobody
 * listens there"), and the socket stays usable.  drained (optional): the
 * datagrams tk_udp_send() had to queue are all sent.  Either may call
 * tk_udp_close().
 */
struct tk_udp_cb {
	void (*recv)(struct tk_udp *u, const struct tk_udp_dgram *d, int err,
		     void *arg);
	void (*drained)(struct tk_udp *u, void *arg);
};

struct tk_udp_opts {
	/* Local address to bind (port 0: any); NULL: the system's choice. */
	const struct tk_addr *bind;
	/* Peer to connect to: only its datagrams come, ICMP errors too. */
	const struct tk_addr *peer;
	size_t recv_size; /* receive buffer; 0: TK_UDP_RECV_MAX */
	/* Bytes tk_udp_send() may queue when the kernel's buffer is full;
	 * 0: 4 MiB. */
	size_t max_pending;
};

/*
 * Open a UDP socket on loop: bound and/or connected as opts say (one of
 * them at least), watched for datagrams.  0, -EINVAL (no address, or two
 * families), or -errno from socket(), bind() or connect().
 */
int tk_udp_open(struct tk_loop *loop, const struct tk_udp_opts *opts,
		const struct tk_udp_cb *cb, void *arg, struct tk_udp **out);
/*
 * Send one datagram of len bytes (0 .. 65,527), to the connected peer
 * (to NULL) or to to.  A datagram the kernel cannot take now is queued,
 * whole, and sent in order when it can (cb->drained then).  0, -EMSGSIZE
 * (too long), -ENOBUFS (the queue is over max_pending: nothing queued),
 * -EDESTADDRREQ (no peer), or an error of the send: -ECONNREFUSED on a
 * connected socket after an ICMP port unreachable.
 */
int tk_udp_send(struct tk_udp *u, const struct tk_addr *to, const void *data,
		size_t len);
/* Bytes of datagrams queued by tk_udp_send(), not yet sent. */
size_t tk_udp_pending(const struct tk_udp *u);
/* The local address (with the port the system chose).  0 or -errno. */
int tk_udp_local(const struct tk_udp *u, struct tk_addr *out);
int tk_udp_fd(const struct tk_udp *u);
/*
 * Close and free; what is still queued is dropped (tk_udp_pending() says
 * how much).  Safe from its own callbacks; NULL does nothing.
 */
void tk_udp_close(struct tk_udp *u);

/*
 * Datagram servers.  A UDP server is a tk_udp_server, not a tk_server: it
 * has no connections to accept, count or drain, only datagrams.  Its
 * shape is the TCP server's: with workers > 1, N threads, each with its
 * own loop and its own socket per address (SO_REUSEPORT: the kernel
 * spreads the senders); one worker runs on the caller's loop.  Each
 * worker receives in batches (recvmmsg), calls the service for each
 * datagram, and sends the replies in batches (sendmmsg).  When the kernel
 * cannot take the replies, the worker waits to send them before it
 * receives more: replies are never dropped by the server, and the
 * kernel's receive queue takes the excess, as UDP does.
 */
struct tk_udp_server;

/* One datagram a server received; borrowed for the service's call. */
struct tk_udp_req {
	const void *data;
	size_t len;
	bool truncated; /* longer than TK_UDP_RECV_MAX: never on IP */
	const struct tk_addr *peer;
	unsigned worker;
	struct tk_udp_server *server;
	void *priv_; /* the library's */
};

/*
 * A datagram service: on_datagram runs for every datagram, on its
 * worker's thread, and may answer with tk_udp_reply() during the call.
 */
struct tk_udp_service {
	const char *name;
	void (*on_datagram)(struct tk_udp_req *r, void *arg);
};

/*
 * Reply to r's sender with len bytes (r->data itself is sent without a
 * copy).  0, -EMSGSIZE, or -ENOSPC (one reply per request at most).
 */
int tk_udp_reply(struct tk_udp_req *r, const void *data, size_t len);

struct tk_udp_server_opts {
	unsigned workers; /* 0 or 1: the caller's loop; N: N threads */
	unsigned batch;	  /* datagrams per system call; 0: 32 (max 256) */
};

void tk_udp_server_opts_init(struct tk_udp_server_opts *opts);

/* Totals over every worker. */
struct tk_udp_server_stats {
	uint64_t datagrams_in;
	uint64_t datagrams_out;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t truncated;   /* received cut short */
	uint64_t send_errors; /* replies the kernel refused (not EAGAIN) */
	uint64_t recv_errors;
	uint64_t batches_in; /* recvmmsg calls that returned datagrams */
	uint64_t workers;
};

/* 0, -EINVAL or -ENOMEM (or a worker's loop's error); *out NULL then. */
int tk_udp_server_new(struct tk_loop *loop,
		      const struct tk_udp_server_opts *opts,
		      const struct tk_udp_service *svc, void *svc_arg,
		      struct tk_udp_server **out);
/*
 * Bind addr: one socket per worker (SO_REUSEPORT, the first bound alone
 * so a port in use elsewhere is -EADDRINUSE); port 0 picks a free port,
 * the same for every worker.  0 or -errno.
 */
int tk_udp_server_bind(struct tk_udp_server *s, const struct tk_addr *addr,
		       bool v6only);
size_t tk_udp_server_count(const struct tk_udp_server *s);
const struct tk_addr *tk_udp_server_addr(const struct tk_udp_server *s,
					 size_t i);
/* Start receiving (and the worker threads).  0 or -errno. */
int tk_udp_server_start(struct tk_udp_server *s);
/* Close the sockets and join the workers; owner's thread. */
void tk_udp_server_stop(struct tk_udp_server *s);
void tk_udp_server_get_stats(const struct tk_udp_server *s,
			     struct tk_udp_server_stats *out);
/* Stops (if needed) and frees; NULL does nothing. */
void tk_udp_server_free(struct tk_udp_server *s);

/*
 * Built-in datagram services: echo (RFC 862: every datagram back to its
 * sender, byte for byte) and discard (RFC 863: nothing back).
 */
extern const struct tk_udp_service tk_udp_service_echo;
extern const struct tk_udp_service tk_udp_service_discard;
/* Find one by name ("echo", "discard"), or NULL. */
const struct tk_udp_service *tk_udp_service_find(const char *name);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_UDP_H */
