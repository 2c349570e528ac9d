/* tcpkit/broker.h: the broker and chat services: every client's bytes (or
 * named lines) to every other client of the same server. */
#ifndef TCPKIT_BROKER_H
#define TCPKIT_BROKER_H

#include "../tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * The set of clients of one server: the svc_arg of tk_service_broker and
 * tk_service_chat (one broker per server; no state is global).  Every
 * client must live on the loop given here, so the server runs with
 * workers <= 1 on that loop: a client on another loop is refused in open
 * (-EXDEV).  One thread lets a byte reach every client without a copy per
 * worker or a queue between threads.
 *
 * Output per client is bounded.  A client with more than its
 * connection's max_pending waiting is behind: each sender is held after
 * its current chunk until nobody is behind, so a reader a little late
 * loses nothing and holds at most max_pending and one chunk per sender.
 * A client behind for slow_ms is cut (reset, closed with -ENOBUFS) and the
 * senders go on: one that does not read holds the others for slow_ms at
 * most, and never memory.
 */
struct tk_broker;

#define TK_BROKER_DEFAULT_SLOW_MS 2000u

struct tk_broker_opts {
	uint64_t slow_ms; /* 0: TK_BROKER_DEFAULT_SLOW_MS */
};

/* 0 with *out set (opts may be NULL: defaults), or -EINVAL, -ENOMEM. */
int tk_broker_new(struct tk_loop *loop, const struct tk_broker_opts *opts,
		  struct tk_broker **out);
/* Free b once its server is stopped (no client left), before its loop. */
void tk_broker_free(struct tk_broker *b);
/* Clients in the set now. */
size_t tk_broker_count(const struct tk_broker *b);

/* The longest chat name, in bytes. */
#define TK_CHAT_NAMELEN 32

/*
 * broker: every chunk a client sends is written whole to every other
 * client, never back to the sender, in the order it was read: a sender's
 * bytes arrive in order and no chunk is split by another's, but a message
 * the sender wrote may come in several reads, so only a line service
 * (chat) keeps other senders out of a message.  A client's FIN is its
 * leaving (as with ncat --broker): what was queued for it is written, then
 * the FIN.
 *
 * chat: line based (TK_SERVICE_LINE_FRAMING, under max_line).  A client
 * is "user<N>" until "/nick NAME" (1 to TK_CHAT_NAMELEN printable bytes,
 * no space or control character, not in use).  Every line goes to the
 * others as "<NAME> line\n", control characters shown as ^X; the joiner
 * is told "* you are NAME\n", the others "* NAME joined\n", "* NAME left\n",
 * "* OLD is now NEW\n".  A refused /nick is answered "error: ...\n" to the
 * sender only; a line too long gets "error: line too long\n" and ends
 * that client.  A client's FIN is its leaving.
 */
extern const struct tk_service tk_service_broker;
extern const struct tk_service tk_service_chat;

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_BROKER_H */
