/* tcpkit/handoff.h: stopping a server's accepts while another process
 * serves on the same listening sockets (a restart's hand-over). */
#ifndef TCPKIT_HANDOFF_H
#define TCPKIT_HANDOFF_H

#include "tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * Stop accepting, and nothing else: the listening sockets stay open (a
 * process that has them, from tk_server_listener_fds(), goes on
 * accepting what waits in them) and connections go on.  Connections
 * accepted just before get time for their first bytes to arrive before a
 * tk_server_drain(), which would end them as idle.  Each worker stops
 * on its own thread at its next round.  Any time after
 * tk_server_new(), from the owner's thread; 0 or -ENOMEM (a worker
 * could not be told; call again).
 */
int tk_server_pause(struct tk_server *s);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_HANDOFF_H */
