/* tcpkit/scan.h: a TCP connect scan on the event loop, and the parsers of its
 * port and target lists (part of tcpkit.h; include that). */
#ifndef TCPKIT_SCAN_H
#define TCPKIT_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * A set of TCP ports 1-65535, as a bitmap: a port listed twice is scanned
 * once, and ports are scanned in ascending order.
 */
struct tk_portset {
	uint8_t bits[65536 / 8];
	uint32_t count; /* ports in the set */
};

/*
 * Parse a port list: items separated by commas, each a port ("80"), a range
 * ("8000-8100", both ends included), an open range ("-1024" from 1,
 * "60000-" to 65535), or "-" alone for every port 1-65535.  No blanks.
 * Pure.  Returns 0, or TK_EBADPORT with a one-line reason in why (when why
 * is not NULL) that names the bad item: "port '99999' out of range
 * (1-65535)", "range '90-80' runs backwards", "empty item in 'a,,b'".
 * out is filled only on success.
 */
int tk_portset_parse(const char *text, struct tk_portset *out, char *why,
		     size_t whylen);
bool tk_portset_has(const struct tk_portset *ps, uint16_t port);
/* The first port of the set above after (0: the first), or 0 if none. */
uint16_t tk_portset_next(const struct tk_portset *ps, uint16_t after);

/*
 * A scan target: an IP literal (IPv6 with or without brackets), a CIDR
 * block of either family ("127.0.0.0/30", "::1/128": every address in it,
 * network and broadcast ones included, host bits ignored) or a host name
 * to resolve.
 */
struct tk_scan_target {
	bool is_name;
	char name[TK_HOSTLEN]; /* is_name: the name as given */
	struct tk_addr first;  /* otherwise: the block's first address */
	unsigned prefix;       /* its prefix length (32 or 128: one) */
	uint64_t count;	       /* addresses: 1 for a literal or a name */
};

/*
 * Parse one target.  A block of more than max_addrs addresses is refused
 * (the caller's bound on what one argument may expand to).  Pure (no
 * lookup).  Returns 0, or TK_EBADADDR with a reason naming the bad part in
 * why: "prefix '/33' out of range (0-32)", "block '10.0.0.0/8' has
 * 16777216 addresses, more than 65536", "'a b' is not an address or a host
 * name".
 */
int tk_scan_target_parse(const char *text, uint64_t max_addrs,
			 struct tk_scan_target *out, char *why, size_t whylen);
/* The i-th address (i < count) of a block target, port 0. */
void tk_scan_target_addr(const struct tk_scan_target *t, uint64_t i,
			 struct tk_addr *out);

/* What a probe found. */
enum tk_scan_state {
	TK_SCAN_OPEN,	  /* the connect succeeded */
	TK_SCAN_CLOSED,	  /* refused (RST): nothing listens */
	TK_SCAN_FILTERED, /* no answer in time, or unreachable */
};

/* One port's result, borrowed for the callback. */
struct tk_scan_result {
	const struct tk_addr *addr; /* the address and port probed */
	size_t target;		    /* index into the addresses given */
	enum tk_scan_state state;
	/*
	 * Why: 0 (open), -ECONNREFUSED (closed), TK_ECONNTIMEDOUT or
	 * -EHOSTUNREACH, -ENETUNREACH... (filtered).
	 */
	int err;
	unsigned tries;	    /* connects made for this port (1 + retries) */
	uint64_t ms;	    /* the last connect's time, loop clock */
	const char *banner; /* open, with a banner read: what it said */
	size_t banner_len;  /* 0: nothing (or no banner read) */
};

struct tk_scan;
typedef void (*tk_scan_result_cb)(struct tk_scan *s,
				  const struct tk_scan_result *r, void *arg);
/*
 * The scan is over: every port reported (err 0), or it could not go on
 * (err: a local failure such as -EMFILE with nothing left in flight).
 */
typedef void (*tk_scan_done_cb)(struct tk_scan *s, int err, void *arg);

#define TK_SCAN_MAX_INFLIGHT	   10000u
#define TK_SCAN_DEFAULT_INFLIGHT   100u
#define TK_SCAN_DEFAULT_TIMEOUT_MS 1000u

struct tk_scan_opts {
	/* Connects in flight at most; 0: TK_SCAN_DEFAULT_INFLIGHT. */
	unsigned inflight;
	/* Per connect: no answer in this long is filtered; 0: default. */
	uint64_t timeout_ms;
	/* Further connects to a port that timed out (filtered ones only). */
	unsigned retries;
	/* Connects started per second at most (token bucket); 0: no limit. */
	uint64_t rate;
	/*
	 * Banner: on an open port, read what the peer says first, up to
	 * banner_max bytes, its first line or banner_timeout_ms (0: the
	 * connect timeout), whichever comes first.  0: no read.
	 */
	size_t banner_max;
	uint64_t banner_timeout_ms;
};

void tk_scan_opts_init(struct tk_scan_opts *opts);

struct tk_scan_stats {
	uint64_t total; /* ports to probe over every address */
	uint64_t done;	/* reported */
	uint64_t open, closed, filtered;
	uint64_t inflight;
	uint64_t connects; /* connect() calls, retries included */
};

/*
 * A scan of every port of ports on each of addrs[0..naddrs) (copied; their
 * ports are ignored), addresses in order, ports ascending.  on_result runs
 * once per port, on_done once at the end, both on loop's thread from the
 * loop; neither may free the scan.  Probes close with a reset (SO_LINGER
 * 0): a scan of many open ports leaves no TIME_WAIT behind.  Nothing
 * starts before tk_scan_start().  Returns 0 or -EINVAL (no address, no
 * port, inflight above TK_SCAN_MAX_INFLIGHT), -ENOMEM.
 */
int tk_scan_new(struct tk_loop *loop, const struct tk_scan_opts *opts,
		const struct tk_addr *addrs, size_t naddrs,
		const struct tk_portset *ports, tk_scan_result_cb on_result,
		tk_scan_done_cb on_done, void *arg, struct tk_scan **out);
/* Begin, from the loop's next round.  0 or -EALREADY. */
int tk_scan_start(struct tk_scan *s);
void tk_scan_get_stats(const struct tk_scan *s, struct tk_scan_stats *out);
/* Close whatever is in flight (unreported) and free; NULL does nothing. */
void tk_scan_free(struct tk_scan *s);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_SCAN_H */
