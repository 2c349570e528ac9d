/* server_pp.h: a server's wait for the PROXY protocol header of a
 * connection just accepted, before the connection is made (server.c). */
#ifndef TK_SERVER_PP_H
#define TK_SERVER_PP_H

#include "internal.h"

struct tk__ppwait;

/*
 * The end of a wait: err 0 with peer the real client (or the sender's
 * own address, for a LOCAL or UNKNOWN header) and via the sender's
 * address (NULL when peer is it), or an error code (TK_EPPHEADER,
 * TK_ETIMEDOUT, TK_ETRUNCATED, -ECANCELED, -errno) with peer the sender.
 * tag is the one given to tk__ppwait_start() (the server's listener).
 * The callback owns fd from then on; the wait is gone when it returns.
 */
typedef void (*tk__ppwait_cb)(int fd, const struct tk_addr *peer,
			      const struct tk_addr *via, size_t tag, int err,
			      void *arg);

/*
 * Wait on loop for fd's header, for timeout_ms at most; the wait is put
 * on *list (for tk__ppwait_cancel_all()).  0, or -ENOMEM and the like:
 * then cb is never called and fd is still the caller's.
 */
int tk__ppwait_start(struct tk_loop *loop, struct tk__ppwait **list, int fd,
		     const struct tk_addr *peer, uint64_t timeout_ms,
		     size_t tag, tk__ppwait_cb cb, void *arg);
/* End every wait of *list with -ECANCELED. */
void tk__ppwait_cancel_all(struct tk__ppwait **list);
/* c's balancer (tk_conn_via()): via (malloc'd or NULL) is c's to free. */
void tk__conn_give_via(struct tk_conn *c, struct tk_addr *via);

#endif
