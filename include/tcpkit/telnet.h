/* tcpkit/telnet.h: the telnet negotiation a client refuses, as `nc -t`. */
#ifndef TCPKIT_TELNET_H
#define TCPKIT_TELNET_H

#include <stddef.h>

#include "tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * A filter over the bytes a telnet server sends, for a client that wants
 * the data and none of the options: every request is refused (IAC DO x is
 * answered IAC WONT x, IAC WILL x is answered IAC DONT x; WONT and DONT
 * need no answer, so two refusing ends never loop), IAC IAC is one 0xff
 * data byte, and every other command (NOP, GA, a subnegotiation IAC SB ...
 * IAC SE) is dropped.  A sequence may be cut anywhere between two calls:
 * the state carries it over.  Pure: no I/O, no allocation.
 */
struct tk_telnet {
	int state;
	unsigned char verb; /* the WILL/WONT/DO/DONT awaiting its option */
};

void tk_telnet_init(struct tk_telnet *t);
/*
 * Filter in[0..n): the data bytes go to out (room for n needed), the
 * answers to send back to the server go to reply (room for n + 2 needed:
 * a sequence begun in the previous call may end in this one).  *outlen
 * and *replylen are set to what was written.
 */
void tk_telnet_filter(struct tk_telnet *t, const void *in, size_t n, void *out,
		      size_t *outlen, void *reply, size_t *replylen);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_TELNET_H */
