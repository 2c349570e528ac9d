/* backend.h: what the loop core asks of a backend: the poller, wakeup from
 * other threads, and signals as events.  Exactly one backend is compiled
 * (TK_BACKEND at configure time: epoll.c or poll.c). */
#ifndef TK_LOOP_BACKEND_H
#define TK_LOOP_BACKEND_H

#include <stdint.h>

#include "internal.h"

/*
 * Events come back with the data they were registered with.  The loop
 * tags an fd's data with a generation that is never 0 in the high half,
 * so data whose high half is 0 is the backend's own: TK__EV_WAKE (a
 * tk__backend_wake() call, possibly several, coalesced) or a signal number
 * (TK__EV_SIGNAL(signo)).
 */
#define TK__EV_WAKE	     ((uint64_t)UINT32_MAX)
#define TK__EV_SIGNAL(signo) ((uint64_t)(uint32_t)(signo))
#define TK__EV_IS_OWN(data)  (((data) >> 32) == 0)

struct tk__backend;

/* The backend's name ("epoll", "poll"). */
const char *tk__backend_name(void);
/* 0 with *out set, or -errno. */
int tk__backend_new(struct tk__backend **out);
/* Frees b; signals it took return to the mask and action they had. */
void tk__backend_free(struct tk__backend *b);

int tk__backend_add(struct tk__backend *b, int fd, unsigned events,
		    uint64_t data);
int tk__backend_mod(struct tk__backend *b, int fd, unsigned events,
		    uint64_t data);
int tk__backend_del(struct tk__backend *b, int fd);
/*
 * fd is about to be closed (and was never dup'ed): drop it without a
 * system call where the kernel forgets a closed fd by itself (epoll).
 */
void tk__backend_forget(struct tk__backend *b, int fd);

/*
 * Wait up to timeout_ms (-1: forever) and fill evs; returns how many, 0 on
 * a timeout or an interrupted wait, or -errno.
 */
int tk__backend_wait(struct tk__backend *b, struct tk__event *evs, int max,
		     int timeout_ms);

/* Make a waiting (or the next) tk__backend_wait() return; any thread. */
void tk__backend_wake(struct tk__backend *b);

/*
 * Deliver signo as a TK__EV_SIGNAL event from now on, instead of its
 * default action.  0 or -errno.
 */
int tk__backend_signal(struct tk__backend *b, int signo);

#endif /* TK_LOOP_BACKEND_H */
