/* bench_engine.h: the load generator behind `tcpkit bench`, an internal
 * library of the program (not in libtcpkit): options in, results and
 * progress out; it prints nothing. */
#ifndef TK_BENCH_ENGINE_H
#define TK_BENCH_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpkit.h"

enum bench_mode {
	BENCH_ECHO,
	BENCH_BULK,
	BENCH_RATE,
	BENCH_GREET,
	BENCH_IDLE,
};

/* Error classes, in the order the reports list them. */
enum bench_err {
	BENCH_ERR_CONNECT,  /* connect failed: refused, timed out, no fds */
	BENCH_ERR_RESET,    /* reset, or closed where an answer was due */
	BENCH_ERR_TIMEOUT,  /* no answer in time, open-loop queue overflow */
	BENCH_ERR_MISMATCH, /* an echoed message differs from what was sent */
	BENCH_ERR_PROTOCOL, /* what the server sent breaks the framing */
	BENCH_ERR_TLS,	    /* a TLS handshake failed or timed out */
	BENCH_NERR,
};

#define BENCH_MAX_SIZE	     (16u * 1024 * 1024)
#define BENCH_MAX_INFLIGHT_B (64u * 1024 * 1024) /* -d times -s */
#define BENCH_MAX_CONNS	     100000u
#define BENCH_MAX_DEPTH	     1024u
#define BENCH_MAX_THREADS    256u

/* How the measured window goes, second by second. */
struct bench_progress {
	unsigned second;	   /* 1, 2, ... since the window opened */
	uint64_t per_second;	   /* messages (rate, greet: connections) */
	uint64_t connections_open; /* now */
	uint64_t errors;	   /* so far, warm-up included */
	bool per_connection;	   /* per_second counts connections */
};

struct bench_opts {
	enum bench_mode mode;
	char host[TK_HOSTLEN];
	char port[TK_PORTLEN];
	/* "HOST:PORT" (and " via PROXY") for messages */
	char where[2 * TK_HOSTLEN + TK_PROXY_CREDLEN + 64];
	bool is_unix; /* a unix: target: unix_addr, no host */
	struct tk_addr unix_addr;
	uint32_t connections;
	uint32_t depth;
	size_t size;
	uint64_t duration_ms;
	uint64_t warmup_ms;
	uint64_t count; /* -n: messages or operations per connection; 0 */
	double rate;	/* --rate: messages/s in all; 0: closed loop */
	size_t window;	/* bulk: bytes sent and not yet echoed */
	unsigned threads;
	uint64_t connect_timeout_ms;
	/*
	 * --start-at: the Unix time (ns) to begin at, once every connection
	 * is open (generators on several machines then start together); 0:
	 * as soon as they are open.
	 */
	uint64_t start_at_ns;
	/* --message/--message-file: echo's payload, or rate/greet's line. */
	char *message;
	size_t message_len;
	/* --tls: one client context for every thread; NULL: plain TCP. */
	struct tk_tls_ctx *tls;
	const char *servername; /* --servername, or NULL: the host */
	/*
	 * --proxy: every connection to host and port through it (the
	 * addresses given to bench_run() are the proxy's then).
	 */
	bool has_proxy;
	struct tk_proxy proxy;
	/*
	 * Optional: the words for a failed TLS handshake on c (the engine's
	 * own: tk_strerror() and the connection's last error).
	 */
	const char *(*tls_why)(struct tk_conn *c, int err, char *buf,
			       size_t len);
	/* Optional: called on the caller's thread about once a second. */
	void (*progress)(const struct bench_progress *p, void *arg);
	void *progress_arg;
	/* The program's, for its reports: the engine reads none of these. */
	bool udp;		  /* -u: cli/bench_udp.c, not this engine */
	uint64_t loss_timeout_ms; /* -u: a reply later than this is lost */
	bool tls_used;		  /* bench merge: the runs merged used TLS */
	bool json;
	bool quiet;
	const char *csv_path;
	const char *plot_path;
};

/* One second of the measured window (the last one may be shorter). */
struct bench_row {
	uint64_t messages;    /* echoed messages, bulk blocks, rate/greet ops */
	uint64_t bytes;	      /* bytes received */
	uint64_t connections; /* open at the end of the second */
	uint64_t errors;
};

struct bench_stats {
	uint64_t messages; /* completed inside the measured window */
	uint64_t drained;  /* completed after it, latency recorded only */
	uint64_t bytes_out;
	uint64_t bytes_in;
	uint64_t established;	     /* connections that opened, whole run */
	uint64_t errors[BENCH_NERR]; /* whole run, warm-up included */
	/* A TLS reason whole: its --pin advice is of no use cut short. */
	char first_error[BENCH_NERR][TK_TLS_ERRLEN + 64];
	struct tk_hist hist; /* latency in ns */
};

struct bench_result {
	struct bench_stats total;
	uint64_t window_ns; /* length of the measured window */
	uint64_t start_us;  /* Unix time (us) the measured window opened */
	uint64_t cpu_user_ns;
	uint64_t cpu_sys_ns;
	struct bench_row *rows;
	size_t nrows;
	uint64_t last_row_ns; /* span of the last row */
	uint64_t open_at_end; /* connections open when the window closed */
	int connect_err;      /* the first connect error, if nothing opened */
	int tls_err;	      /* the first TLS handshake error */
	bool no_connection;   /* not one connection could be established */
	bool interrupted;     /* SIGINT or SIGTERM cut the run short */
	/*
	 * The program's (bench merge): how many runs were merged into this
	 * one (0: a run of its own), and their own rates summed.
	 */
	unsigned generators;
	double rate_sum;
};

/* A mode's name ("echo"), for reports. */
const char *bench_mode_name(enum bench_mode m);
/* An error class's name ("connect"). */
const char *bench_err_name(enum bench_err e);

/*
 * Run the benchmark o against addrs.  Fills r (rows allocated: free with
 * bench_result_free()).  Returns 0, or a negative code when the run could
 * not start (out of memory, no threads).
 */
int bench_run(const struct bench_opts *o, const struct tk_addrlist *addrs,
	      struct bench_result *r);
void bench_result_free(struct bench_result *r);

#endif /* TK_BENCH_ENGINE_H */
