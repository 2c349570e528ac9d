/* tcpkit/exec.h: a program per connection, the socket as its stdin and
 * stdout (inetd, UCSPI, ncat --exec), reaped on the loop (part of tcpkit.h;
 * include that). */
#ifndef TCPKIT_EXEC_H
#define TCPKIT_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * Take a plain connection's socket out of the library: c ends (its close
 * callback runs with 0, as always after the current callback) and *fd is
 * the caller's, still connected and non-blocking.  Nothing is sent: no
 * FIN, no reset, no linger, so a process given the fd owns the stream.
 * 0; -ENOTCONN if c is not open; -EINVAL for TLS (the session cannot be
 * handed over); -EBUSY while output is pending or input is held.
 */
int tk_conn_detach(struct tk_conn *c, int *fd);

struct tk_exec;

/*
 * tk_exec_exit.status of a child that someone else reaped (SIGCHLD
 * ignored, a waitpid(-1) elsewhere): how it ended is not known.
 */
#define TK_EXEC_STATUS_UNKNOWN (-1)

/* How a child ended, for tk_exec_opts.on_exit. */
struct tk_exec_exit {
	pid_t pid;	      /* 0 if the spawn failed */
	int spawn_err;	      /* -errno when the program could not start */
	int status;	      /* waitpid()'s, or TK_EXEC_STATUS_UNKNOWN */
	struct tk_addr peer;  /* the connection's peer */
	uint64_t duration_ms; /* spawn to reap, loop time */
};

typedef void (*tk_exec_exit_cb)(struct tk_exec *x, const struct tk_exec_exit *e,
				void *arg);

struct tk_exec_opts {
	/*
	 * The program and its arguments, NULL-terminated; argv[0] is looked
	 * up in PATH unless it has a '/'.  Copied by tk_exec_new().
	 */
	const char *const *argv;
	bool stderr_to_peer; /* the child's stderr is the socket too */
	/*
	 * Children running at once at most; 0: no limit.  A connection
	 * over the bound waits, open and unread, until a child exits (first
	 * come, first served); the server's max_conns bounds the waiting.
	 */
	unsigned max_children;
	tk_exec_exit_cb on_exit; /* optional; on the loop's thread */
	void *arg;
	/* tk_exec_free(): SIGTERM, then SIGKILL after this; 0: 2000. */
	uint64_t kill_after_ms;
};

/*
 * A spawner on loop (a server's with workers <= 1, or a client's).
 * 0 with *out set, or -EINVAL (no argv), -ENOMEM.
 */
int tk_exec_new(struct tk_loop *loop, const struct tk_exec_opts *opts,
		struct tk_exec **out);
/*
 * Run the program for c, an open connection on x's loop.  Plain: c is
 * detached (tk_conn_detach()) and its socket becomes the child's stdin and
 * stdout, blocking again.  TLS: the child gets one end of a socketpair and
 * the loop copies between the other end and c (at most 256 KiB waiting
 * each way, a half-close carried across as FIN or close_notify; a program
 * that stops reading, or exits with input unread, has the rest of the
 * input dropped, and what it wrote still reaches the peer); c's
 * service is replaced by that copy (none of its callbacks runs again, close
 * included; a server's drain leaves it to finish), and the environment
 * gets TCPKIT_TLS_CLIENT_SUBJECT when the client sent a verified
 * certificate.  In the child every other fd is closed, the signal mask is
 * empty and every signal has its default action (but glibc's two
 * reserved ones, 32 and 33, which its posix_spawn() leaves ignored).  The
 * environment is the parent's plus TCPKIT_PEER_ADDR, TCPKIT_PEER_PORT,
 * TCPKIT_LOCAL_ADDR and TCPKIT_LOCAL_PORT (the parent's environ is not
 * touched).  0; or a
 * negative code and c is left as it was: -EBUSY (output pending), -EAGAIN
 * (max_children running), the spawn's -errno (-ENOENT: no such program).
 */
int tk_exec_spawn(struct tk_exec *x, struct tk_conn *c);
/* Children running now. */
size_t tk_exec_running(const struct tk_exec *x);
/*
 * Free x.  Children still running get SIGTERM, then SIGKILL after
 * kill_after_ms, and are reaped before this returns (it blocks for that
 * long at most): none is left a zombie.  Their on_exit is not called.
 * Connections waiting for a slot are closed.
 */
void tk_exec_free(struct tk_exec *x);

/*
 * The exec service: each connection runs the program of the struct
 * tk_exec given as the service's argument (tk_exec_spawn(); over
 * max_children, it waits).  A spawn that fails closes the connection
 * (FIN) and is reported to on_exit with spawn_err.
 */
extern const struct tk_service tk_service_exec;

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_EXEC_H */
