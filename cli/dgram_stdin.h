/* dgram_stdin.h: stdin cut into UDP datagrams (a line, or a --datagram-size
 * chunk, each), read as the socket keeps up: connect -u and listen -u. */
#ifndef TK_CLI_DGRAM_STDIN_H
#define TK_CLI_DGRAM_STDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpkit.h"

/*
 * The session sets the public part (zeroed first) and keeps u and to up to
 * date; the callbacks get arg.  The session is over when *done is true:
 * nothing more is read or sent then.
 */
struct dgram_stdin {
	struct tk_loop *loop;
	struct tk_udp *u;	  /* datagrams go out through this socket... */
	const struct tk_addr *to; /* ...to this peer (NULL: its own) */
	const bool *done;
	/* stdin failed: end the session with this exit code. */
	void (*finish)(void *arg, int code);
	/* A send failed (err): report it and end the session. */
	void (*send_failed)(void *arg, int err);
	/* Optional: stdin ended and its last datagram went. */
	void (*at_eof)(void *arg);
	void *arg;
	uint64_t sent; /* datagrams */
	bool eof;      /* stdin has ended */
	/* Private. */
	unsigned char *pend; /* a line not yet ended, or a partial chunk */
	size_t npend;
	size_t max; /* --datagram-size, or the longest line */
	bool lines;
	bool watched, polls, paused;
};

/* Datagrams of datagram_size bytes (0: lines).  0 or -ENOMEM. */
int dgram_stdin_init(struct dgram_stdin *ds, size_t datagram_size);
/* Read stdin when it has input (a regular file: in turns). */
void dgram_stdin_want(struct dgram_stdin *ds);
/* The socket's queue drained (tk_udp_cb.drained): read again if paused. */
void dgram_stdin_drained(struct dgram_stdin *ds);
/* Stop reading stdin. */
void dgram_stdin_stop(struct dgram_stdin *ds);
/* Stop, and free what init allocated. */
void dgram_stdin_free(struct dgram_stdin *ds);

#endif
