/* internal.h: declarations shared between library modules, not part of the API.
 */
#ifndef TK_INTERNAL_H
#define TK_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpkit.h"

/* Preserve errno across cleanup calls (close, free) on error paths. */
#define TK_SAVE_ERRNO(stmt)                                                    \
	do {                                                                   \
		int save_errno_ = errno;                                       \
		stmt;                                                          \
		errno = save_errno_;                                           \
	} while (0)

/*
 * An event from the loop's backend (loop/backend.h): data is handed back
 * as it was registered.
 */
struct tk__event {
	uint64_t data;
	unsigned events; /* TK_READABLE | TK_WRITABLE | TK_HANGUP */
};

/*
 * A node of a loop's circular list of live handles (connections, timers):
 * a list's head is a node of the loop; next == NULL: on no list.
 */
struct tk__lnode {
	struct tk__lnode *next, *prev;
};

/* Timers and their min-heap (timer.c). */
struct tk_timer {
	struct tk_loop *loop;
	tk_timer_cb cb;
	void *arg;
	uint64_t due;	 /* loop time in ms */
	uint64_t repeat; /* 0: one-shot */
	uint64_t seq;	 /* start order: equal deadlines fire FIFO */
	size_t index;	 /* position in the heap, TK__HEAP_NONE if stopped */
	struct tk__lnode node; /* tk_timer_new()'s: the loop's timers */
};

#define TK__HEAP_NONE ((size_t)-1)

/*
 * A timer that is part of another object (a connection's) rather than
 * allocated by tk_timer_new(): stopped, never freed; tk_timer_stop() it
 * before the object goes.
 */
void tk__timer_init(struct tk_timer *t, struct tk_loop *loop, tk_timer_cb cb,
		    void *arg);

/* A timer like tk_timer_new()'s, but part of the library's own work (a
 * connection's): not a handle of its loop (tk_loop_walk()). */
struct tk_timer *tk__timer_alloc(struct tk_loop *loop, tk_timer_cb cb,
				 void *arg);

struct tk__heap {
	struct tk_timer **v;
	size_t n;
	size_t cap;
};

int tk__heap_push(struct tk__heap *h, struct tk_timer *t);
void tk__heap_remove(struct tk__heap *h, struct tk_timer *t);
/* The earliest timer, or NULL. */
struct tk_timer *tk__heap_min(const struct tk__heap *h);
void tk__heap_free(struct tk__heap *h);

/* The loop's timer heap, and running the timers that are due. */
struct tk__heap *tk__loop_heap(struct tk_loop *loop);
uint64_t tk__loop_next_seq(struct tk_loop *loop);
void tk__timers_run(struct tk_loop *loop);

/*
 * Deferred work on the loop's own thread, run after the current round of
 * callbacks: the way objects are freed after their last callback.  The
 * node is embedded in the object; no allocation.
 */
struct tk__defer {
	void (*cb)(struct tk__defer *d);
	struct tk__defer *next;
	bool queued;
};

void tk__loop_defer(struct tk_loop *loop, struct tk__defer *d);
/* Run deferred work until none is left. */
void tk__loop_run_deferred(struct tk_loop *loop);
/*
 * tk_loop_post(), and drop(arg) instead of cb if the loop is freed before
 * cb could run: work whose argument must not leak.  Any thread.
 */
int tk__loop_post_drop(struct tk_loop *loop, tk_work_cb cb,
		       void (*drop)(void *arg), void *arg);
/*
 * The same in two steps, for work that must reach several loops or none:
 * allocate every node first (NULL: out of memory), then queue each, which
 * cannot fail.  A node is freed by the loop once run or dropped.
 */
struct tk__post;
struct tk__post *tk__post_new(void);
void tk__loop_post_ready(struct tk_loop *loop, struct tk__post *p,
			 tk_work_cb cb, void (*drop)(void *arg), void *arg);
/* Run the work tk_loop_post() has queued so far (on loop's thread). */
void tk__loop_run_posts(struct tk_loop *loop);

/*
 * Drop fd's watcher: fd is about to be closed (and was never dup'ed).  The
 * epoll backend makes no system call for it (the close takes the fd out
 * of the set), which saves one per connection.
 */
void tk__loop_forget(struct tk_loop *loop, int fd);

/*
 * tk_loop_watch() for an fd the library watches on behalf of a handle (a
 * connection's socket): not a handle of its own (tk_loop_walk(),
 * tk_loop_close()).
 */
int tk__loop_watch_own(struct tk_loop *loop, int fd, unsigned events,
		       tk_io_cb cb, void *arg);

/*
 * The loop's live connections and timers: conn.c adds a connection at
 * creation and removes it at close; timer.c its tk_timer_new() timers.
 */
void tk__loop_add_conn(struct tk_loop *loop, struct tk__lnode *n);
void tk__loop_add_timer(struct tk_loop *loop, struct tk__lnode *n);
void tk__lnode_del(struct tk__lnode *n);
/* The connection whose node n is (conn.c). */
struct tk_conn *tk__conn_of_node(struct tk__lnode *n);

/* A scratch buffer for reads, owned by the loop (one thread). */
#define TK__LOOP_READ_BUF (64u * 1024) /* its size: the most one read takes */
char *tk__loop_read_buf(struct tk_loop *loop, size_t *size);

/* Sockets (sock.c).  All return 0 / an fd, or -errno. */
enum tk__reuseport {
	TK__REUSEPORT_NONE,
	TK__REUSEPORT_FIRST, /* bind alone, then open the group */
	TK__REUSEPORT_JOIN,  /* join the group of the first */
};

int tk__sock_listen(const struct tk_addr *addr, int backlog, bool v6only,
		    enum tk__reuseport reuseport);
/*
 * Open a non-blocking socket for addr, bind source if given, and start
 * connecting.  Returns the fd (connect may still be in progress: watch for
 * writable and check tk__sock_error()) or -errno.
 */
int tk__sock_connect(const struct tk_addr *addr, const struct tk_addr *source);
/* opts' TCP keepalive settings on fd (nothing unless opts->keepalive). */
int tk__sock_keepalive(int fd, const struct tk_conn_opts *opts);
/* Pending error of a socket (SO_ERROR) as -errno, or 0. */
int tk__sock_error(int fd);
int tk__sock_set_nodelay(int fd, bool on);
int tk__sock_set_sndbuf(int fd, size_t bytes);
/*
 * A connection's socket options: TCP_NODELAY if no_delay, and a bound on
 * the kernel's memory for a peer that stops reading: SO_SNDBUF when sndbuf
 * is given, else TCP_NOTSENT_LOWAT at max_pending, which keeps the send
 * buffer's autotuning (bulk speed) but takes no more than max_pending of
 * unsent bytes.  Set on a listening socket, they pass to every socket it
 * accepts (Linux copies them at accept): no call per connection.
 */
int tk__sock_conn_opts(int fd, bool no_delay, size_t sndbuf,
		       size_t max_pending);
int tk__sock_local(int fd, struct tk_addr *out);
int tk__sock_peer(int fd, struct tk_addr *out);
/* close() that keeps errno. */
void tk__close(int fd);

/* A listening UNIX socket's file (unix.c), to remove when done. */
struct tk__unix_file {
	bool made; /* a file to remove */
	dev_t dev;
	ino_t ino;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/*
 * A listening UNIX socket at a, as tk_server_listen_unix() describes (uo
 * may be NULL); f tells of the file made.  The fd, or a negative code.
 */
int tk__unix_listen(const struct tk_addr *a, int backlog,
		    const struct tk_unix_listen_opts *uo,
		    struct tk__unix_file *f);
/* Remove f's file if it is still the one made; then forget it. */
void tk__unix_remove(struct tk__unix_file *f);

/*
 * A connection's transport: how bytes move.  Plain TCP in conn.c; TLS
 * swaps in its own table.  handshake (optional) sets up the transport's
 * session once the socket is connected: 0 when done (the service opens
 * only then), -EAGAIN with *want set to the readiness to wait for, or an
 * error code / -errno with the detail set (tk__conn_set_detail()).
 * read/write return bytes moved or -errno (-EAGAIN when the socket is not
 * ready); close frees the state.  want (optional) tells which readiness
 * the last -EAGAIN waits for when it is not the obvious one (a TLS read
 * that must write first, or the reverse).  shutdown sends FIN (after
 * TLS's close_notify): 0, -errno, or -EAGAIN when close_notify met a full
 * socket; it is called again once the socket is writable.
 */
struct tk__transport {
	int (*handshake)(struct tk_conn *c, unsigned *want);
	ssize_t (*read)(struct tk_conn *c, void *buf, size_t len);
	ssize_t (*write)(struct tk_conn *c, const void *buf, size_t len);
	int (*shutdown)(struct tk_conn *c);
	void (*close)(struct tk_conn *c);
	unsigned (*want)(const struct tk_conn *c);
	/*
	 * Bytes already read from the socket and decrypted, waiting for
	 * read(): epoll cannot tell of them.  NULL: none ever wait.
	 */
	size_t (*pending)(const struct tk_conn *c);
};

/* The plain TCP transport (conn.c), for transports that wrap it. */
extern const struct tk__transport tk__plain_tcp;

/* A connection's transport state, and swapping the transport (conn.c). */
void *tk__conn_tp_state(const struct tk_conn *c);
const struct tk__transport *tk__conn_transport(const struct tk_conn *c);
void tk__conn_set_transport(struct tk_conn *c, const struct tk__transport *tp,
			    void *state);
/* Keep text as the detail of the last error (tk_conn_last_error()). */
void tk__conn_set_detail(struct tk_conn *c, const char *text);

/*
 * A context that wraps a connection in its own transport begins with this
 * (struct tk_tls_ctx does): conn.c attaches the transport of
 * tk_conn_opts.tls through it and knows nothing else of TLS.  attach gives
 * c a session of ctx (a client's checks servername, as in struct
 * tk_conn_opts) through tk__conn_set_transport(); 0 or a negative code.
 */
struct tk__layer {
	int (*attach)(struct tk_conn *c, void *ctx, const char *servername);
};

/*
 * References, for a server's swaps (tk_server_set_tls(), _set_acl()): each
 * holder takes one and gives it back with tk_tls_ctx_free() or
 * tk_acl_free(), which free at the last.  Any thread.  NULL passes.
 */
struct tk_tls_ctx *tk__tls_ctx_ref(struct tk_tls_ctx *ctx);
const struct tk_acl *tk__acl_ref(const struct tk_acl *acl);
void tk__acl_unref(const struct tk_acl *acl);

/*
 * Who owns an accepted connection (the server): told when a TLS peer is
 * verified (handshake, before the service's open), and of its end: gone
 * the moment it closes, before its fd does (counters say "closed" before
 * any peer can see the close); closed after the service's close callback,
 * just before c is freed.
 */
struct tk__conn_owner {
	/* A TLS connection is verified, just before the service's open. */
	void (*handshake)(struct tk_conn *c);
	void (*gone)(struct tk_conn *c, int err);
	void (*closed)(struct tk_conn *c, int err);
};

/*
 * A worker's counters.  Each has one writer (the worker's thread), so an
 * add is a relaxed load and store, no locked instruction.  Any thread may
 * read them, through tk__ctr_snapshot(): the writer brackets every update
 * with tk__ctr_begin() and tk__ctr_end() (a sequence lock), so a reader
 * sees all of an event's counts or none (a connection closed with a reset
 * is in closed, conn_errors and resets together, never in one alone).
 */
/*
 * A server's listeners.  A successor that takes over (tcpkit/listenfd.h)
 * takes one per worker and address of its predecessor's SO_REUSEPORT
 * groups, each as a listener of its own: 64, as many as a hand-over
 * carries (cli/handoff.c), so the CPU count's workers on two addresses fit.
 */
#define TK__MAX_LISTENERS 64

struct tk__counters {
	_Atomic unsigned seq; /* odd while an update is under way */
	_Atomic uint64_t accepted, rejected, active, closed;
	_Atomic uint64_t bytes_in, bytes_out;
	_Atomic uint64_t accept_errors, conn_errors;
	_Atomic uint64_t resets, timeouts, line_errors;
	_Atomic uint64_t denied;
	_Atomic uint64_t pp_refused;
	_Atomic uint64_t tls_failures;
	_Atomic uint64_t accepted_on[TK__MAX_LISTENERS]; /* per listener */
	/* Response latency (tcpkit/metrics.h): per bucket, not cumulative. */
	_Atomic uint64_t lat_count, lat_sum_ns;
	_Atomic uint64_t lat_bucket[TK_LATENCY_BUCKETS];
};

/* The counters' values, read together. */
struct tk__ctr_values {
	uint64_t accepted, rejected, active, closed;
	uint64_t bytes_in, bytes_out;
	uint64_t accept_errors, conn_errors;
	uint64_t resets, timeouts, line_errors;
	uint64_t denied;
	uint64_t pp_refused;
	uint64_t tls_failures;
	uint64_t accepted_on[TK__MAX_LISTENERS];
	uint64_t lat_count, lat_sum_ns;
	uint64_t lat_bucket[TK_LATENCY_BUCKETS];
};

static inline void
tk__ctr_begin(struct tk__counters *c)
{
	unsigned seq = atomic_load_explicit(&c->seq, memory_order_relaxed);

	atomic_store_explicit(&c->seq, seq + 1, memory_order_relaxed);
	/* The odd sequence is visible before any count changes. */
	atomic_thread_fence(memory_order_release);
}

static inline void
tk__ctr_end(struct tk__counters *c)
{
	unsigned seq = atomic_load_explicit(&c->seq, memory_order_relaxed);

	atomic_store_explicit(&c->seq, seq + 1, memory_order_release);
}

/*
 * Between tk__ctr_begin() and tk__ctr_end(), except for the byte counts:
 * each is one value that agrees with no other, read atomically, and they
 * move on every read and write, so they skip the lock (two stores and a
 * fence less on the hot path).
 */
static inline void
tk__ctr_add(_Atomic uint64_t *v, uint64_t n)
{
	atomic_store_explicit(v,
			      atomic_load_explicit(v, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t
tk__ctr_get(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

/* One update on its own: begin, add, end. */
static inline void
tk__ctr_add1(struct tk__counters *c, _Atomic uint64_t *v, uint64_t n)
{
	tk__ctr_begin(c);
	tk__ctr_add(v, n);
	tk__ctr_end(c);
}

/* A consistent copy of c's values, from any thread (server.c). */
void tk__ctr_snapshot(struct tk__counters *c, struct tk__ctr_values *out);
/* One response latency of ns nanoseconds, on the worker's thread. */
void tk__ctr_latency(struct tk__counters *c, uint64_t ns);
/* CLOCK_MONOTONIC in nanoseconds (latencies need more than the loop's ms). */
uint64_t tk__mono_ns(void);

/*
 * Connections (conn.c), as the server makes them: srv is only handed back
 * by tk_conn_server(); owner's hooks are told of the end.
 */
struct tk_conn *tk__conn_accepted(struct tk_loop *loop, struct tk_server *srv,
				  const struct tk__conn_owner *owner,
				  unsigned worker, struct tk__counters *ctr,
				  int fd, const struct tk_addr *peer,
				  const struct tk_conn_opts *opts,
				  const struct tk_service *svc, void *arg);
/*
 * Start a connection once its socket is connected (or accepted): socket
 * options, then the transport's handshake (if any) or the service's open.
 */
void tk__conn_start(struct tk_conn *c);
/*
 * A connection on fd (connected, non-blocking, now c's) with transport tp
 * (NULL: plain TCP; state handed to it), started at once: for transports
 * made outside the library (tests).  NULL with errno set.
 */
struct tk_conn *tk__conn_adopt(struct tk_loop *loop, int fd,
			       const struct tk__transport *tp, void *state,
			       const struct tk_conn_opts *opts,
			       const struct tk_service *svc, void *arg);
/* Intrusive list links for the server's set of connections. */
struct tk_conn **tk__conn_next(struct tk_conn *c);
struct tk_conn **tk__conn_prev(struct tk_conn *c);

/* Ask c to finish because its server drains (the service's stop, or end). */
void tk__conn_stop(struct tk_conn *c);

#endif /* TK_INTERNAL_H */
