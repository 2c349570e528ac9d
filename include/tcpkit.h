/* tcpkit.h: the one public header of libtcpkit, a TCP client/server toolkit. */
#ifndef TCPKIT_H
#define TCPKIT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; what is declared here is API. */
#pragma GCC visibility push(default)

/*
 * The one place the version is written: the build (CMake's project
 * version, the shared library's SONAME libtcpkit.so.MAJOR, tcpkit.pc) reads
 * it from here.  The string is made from the numbers.
 */
#define TK_VERSION_MAJOR 0
#define TK_VERSION_MINOR 1
#define TK_VERSION_PATCH 0
#define TK__STR_(x)	 #x
#define TK__STR(x)	 TK__STR_(x)
#define TK_VERSION_STRING                                                      \
	TK__STR(TK_VERSION_MAJOR)                                              \
	"." TK__STR(TK_VERSION_MINOR) "." TK__STR(TK_VERSION_PATCH)

/* Library version as a string, e.g. "0.1.0". */
const char *tk_version(void);
/* The event backend the loop runs on, e.g. "epoll". */
const char *tk_backend_name(void);
/*
 * OpenSSL's version text as compiled against, and as loaded now: a shared
 * libssl may have been upgraded since the build.
 */
const char *tk_tls_built_version(void);
const char *tk_tls_runtime_version(void);

/*
 * Errors.  Every call returns 0 (or a count) on success and a negative code
 * on failure: -errno for system errors, or one of the TK_E* codes below,
 * grouped in bands: 3000s resolver, 3100s timeouts, 3200s protocol and
 * parsing, 3300s TLS, 3400s access control, 3500s proxies.  One list
 * generates the enum,
 * tk_strerror() and tk_err_name(), so they cannot drift apart.
 */
/*
 * Each error: its name, value, class (what kind of failure: a program maps
 * the class to its exit status) and text.
 */
#define TK_ERRNO_MAP(X)                                                        \
	X(EOF, -4095, IO, "end of stream")                                     \
	X(ENOHOST, -3001, RESOLVE, "host not found")                           \
	X(ENODATA, -3002, RESOLVE,                                             \
	  "host has no address of the requested family")                       \
	X(EAGAINDNS, -3003, RESOLVE, "temporary failure in name resolution")   \
	X(ERESOLVE, -3004, RESOLVE, "name resolution failed")                  \
	X(ETIMEDOUT, -3101, TIMEOUT, "timed out")                              \
	X(ECONNTIMEDOUT, -3102, TIMEOUT, "connect timed out")                  \
	X(EIDLE, -3103, TIMEOUT, "idle timeout")                               \
	X(ELINETIMEOUT, -3104, TIMEOUT, "line timeout")                        \
	X(EHANDSHAKETIMEDOUT, -3105, TIMEOUT, "TLS handshake timed out")       \
	X(EPROTO, -3201, PROTOCOL, "protocol error")                           \
	X(ELINETOOLONG, -3202, PROTOCOL, "line too long")                      \
	X(EBADADDR, -3203, USAGE, "malformed address")                         \
	X(EBADPORT, -3204, USAGE, "malformed port")                            \
	X(EBADURL, -3205, USAGE, "malformed URL")                              \
	X(EBADENDPOINT, -3213, USAGE, "malformed endpoint")                    \
	X(EHTTP, -3206, PROTOCOL, "malformed HTTP response")                   \
	X(ETRUNCATED, -3207, PROTOCOL,                                         \
	  "connection closed before the end of the data")                      \
	X(ETOOBIG, -3208, PROTOCOL, "size limit exceeded")                     \
	X(EREDIRECTS, -3209, PROTOCOL, "too many redirects")                   \
	X(EREDIRECT, -3210, PROTOCOL, "redirect refused")                      \
	X(EDOWNGRADE, -3211, PROTOCOL, "redirect from https to http refused")  \
	X(ECODING, -3212, PROTOCOL, "malformed content coding")                \
	X(EPPHEADER, -3297, PROTOCOL, "malformed PROXY protocol header")       \
	X(EFDNAMES, -3298, USAGE,                                              \
	  "LISTEN_FDNAMES does not name each socket in LISTEN_FDS")            \
	X(ELISTENFDS, -3299, USAGE, "malformed LISTEN_PID or LISTEN_FDS")      \
	X(ETLS, -3301, TLS, "TLS error")                                       \
	X(ETLSHANDSHAKE, -3302, TLS, "TLS handshake failure")                  \
	X(ETLSVERIFY, -3303, TLS, "certificate from an untrusted issuer")      \
	X(ETLSNAME, -3304, TLS, "certificate name mismatch")                   \
	X(ETLSEXPIRED, -3305, TLS, "certificate expired or not yet valid")     \
	X(ETLSPIN, -3306, TLS, "certificate pin mismatch")                     \
	X(ETLSVERSION, -3307, TLS, "TLS protocol version not accepted")        \
	X(ETLSCERTREQUIRED, -3308, TLS, "client certificate required")         \
	X(ETLSPEERREJECT, -3309, TLS, "the peer rejected our certificate")     \
	X(ETLSCONFIG, -3310, USAGE, "bad TLS configuration")                   \
	X(ETLSPLAIN, -3311, TLS, "the peer does not speak TLS")                \
	X(EDENIED, -3401, REFUSED, "address not allowed")                      \
	X(EPPUNTRUSTED, -3499, REFUSED,                                        \
	  "PROXY protocol header from an untrusted address")                   \
	X(EPROXYDENIED, -3501, REFUSED, "the proxy refused the request")       \
	X(EPROXYAUTH, -3502, AUTH, "proxy authentication failed")              \
	X(EPROXYTARGET, -3503, REFUSED,                                        \
	  "the proxy could not reach the target")                              \
	X(EPROXYPROTO, -3504, PROTOCOL, "proxy protocol error")

enum tk_errno {
#define TK__ERR_ENUM(name, value, class, text) TK_##name = (value),
	TK_ERRNO_MAP(TK__ERR_ENUM)
#undef TK__ERR_ENUM
};

/*
 * What kind of failure an error is.  TK_* codes carry theirs in
 * TK_ERRNO_MAP; a system error (-errno) is REFUSED for a peer that is
 * unreachable, refuses or resets, TIMEOUT for -ETIMEDOUT, IO otherwise.
 */
enum tk_err_class {
	TK_CLASS_NONE,	   /* 0: no error */
	TK_CLASS_USAGE,	   /* a bad argument: address, URL, configuration */
	TK_CLASS_RESOLVE,  /* a name that does not resolve */
	TK_CLASS_REFUSED,  /* refused, unreachable, reset */
	TK_CLASS_TIMEOUT,  /* a deadline passed */
	TK_CLASS_TLS,	   /* TLS: handshake, verification, version */
	TK_CLASS_PROTOCOL, /* the peer broke the protocol, or cut it short */
	TK_CLASS_IO,	   /* anything else the system reports */
	TK_CLASS_AUTH,	   /* credentials refused (a proxy's) */
};

enum tk_err_class tk_err_class(int err);
/* A description of err (TK_* or -errno); never NULL, static storage. */
const char *tk_strerror(int err);
/* The symbolic name of err ("ECONNREFUSED", "ENOHOST"); never NULL. */
const char *tk_err_name(int err);

/*
 * Addresses.  struct tk_addr is a value type: an IPv4, IPv6 or UNIX stream
 * socket address with its length (for AF_UNIX the length counts: it is
 * what tells an abstract name's bytes; tk_addr_from_unix() sets it).
 */
struct tk_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
	} u;
	socklen_t len;
};

/*
 * Enough for "[ffff:...:ffff%ifname]:65535", and for "unix:@" and a
 * 107-byte name with every byte escaped ("\xNN"), and a NUL.
 */
#define TK_ADDRSTRLEN 440
/* Longest host name accepted (RFC 1035 limit plus a dot), and a NUL. */
#define TK_HOSTLEN 256
/* Longest port/service text accepted, and a NUL. */
#define TK_PORTLEN 32

/*
 * Split "host:port", "[v6]:port", "host", ":port" or a bare port "8080" into
 * host and port text.  A bare IPv6 literal without brackets ("::1") is taken
 * as a host with no port.  Missing parts come back as empty strings.
 * Pure: reads only text.  Returns 0, TK_EBADADDR or TK_EBADPORT.
 */
int tk_hostport_split(const char *text, char host[TK_HOSTLEN],
		      char port[TK_PORTLEN]);

/* Parse a decimal port 0..65535 (no sign, no spaces).  0 or TK_EBADPORT. */
int tk_port_parse(const char *text, uint16_t *port);

/*
 * Parse a numeric address "1.2.3.4:80", "[::1]:80", "::1" or "1.2.3.4"
 * (port taken from default_port when absent).  No name lookup.
 * Returns 0 or TK_EBADADDR / TK_EBADPORT.
 */
int tk_addr_parse(const char *text, uint16_t default_port, struct tk_addr *out);

/* Build an address from an IP literal and a port.  0 or TK_EBADADDR. */
int tk_addr_from_ip(const char *ip, uint16_t port, struct tk_addr *out);

/*
 * Format as "1.2.3.4:80", "[::1]:80", "unix:/path" or "unix:@name" (an
 * abstract name: its leading NUL shown as '@'; "unix:" alone for an
 * unnamed socket) into buf (TK_ADDRSTRLEN is always enough).  In a UNIX
 * name, bytes outside printable ASCII and '\' are written "\xNN".
 * Returns buf; on an unknown family writes "?".
 */
char *tk_addr_format(const struct tk_addr *a, char *buf, size_t len);
/* Format the address part only: "1.2.3.4" or "::1".  Returns buf. */
char *tk_addr_format_ip(const struct tk_addr *a, char *buf, size_t len);
uint16_t tk_addr_port(const struct tk_addr *a);
void tk_addr_set_port(struct tk_addr *a, uint16_t port);
int tk_addr_family(const struct tk_addr *a);
/* True for 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and UNIX (local). */
bool tk_addr_is_loopback(const struct tk_addr *a);
/* True for 0.0.0.0 and ::. */
bool tk_addr_is_any(const struct tk_addr *a);
bool tk_addr_equal(const struct tk_addr *a, const struct tk_addr *b);

/*
 * Name resolution.  tk_resolve() looks up every TCP address of host
 * (IPv4 and IPv6, in the system's preferred order, duplicates removed).
 * family: AF_UNSPEC, AF_INET or AF_INET6.  port may be NULL (port 0) or a
 * number or service name.  host may be NULL with TK_RESOLVE_PASSIVE to get
 * the wildcard addresses.  On success *out is a list the caller frees with
 * tk_addrlist_free().  Returns 0, TK_ENOHOST, TK_ENODATA, TK_EAGAINDNS,
 * TK_ERESOLVE, TK_EBADPORT or -ENOMEM.
 */
#define TK_RESOLVE_PASSIVE 0x1 /* addresses to bind to */
#define TK_RESOLVE_NUMERIC 0x2 /* host must be an IP literal */

struct tk_addrlist {
	size_t count;
	struct tk_addr *addrs;
};

int tk_resolve(const char *host, const char *port, int family, int flags,
	       struct tk_addrlist **out);
void tk_addrlist_free(struct tk_addrlist *list);

/*
 * Network interfaces, as `ip a` shows them: name, index, flags, MTU and
 * every IPv4/IPv6 address with its prefix length.
 */
struct tk_iface_addr {
	struct tk_addr addr; /* port 0 */
	unsigned prefix;     /* prefix length in bits */
};

struct tk_iface {
	char name[64];
	unsigned index;
	bool up;       /* administratively up (IFF_UP) */
	bool running;  /* link has carrier (IFF_RUNNING) */
	bool loopback; /* IFF_LOOPBACK */
	unsigned mtu;  /* 0 if unknown */
	char mac[18];  /* "aa:bb:cc:dd:ee:ff" or "" */
	size_t naddrs;
	struct tk_iface_addr *addrs;
};

/* List interfaces; free with tk_iface_list_free().  0 or -errno. */
int tk_iface_list(struct tk_iface **out, size_t *count);
void tk_iface_list_free(struct tk_iface *list, size_t count);

/*
 * Bounded byte buffers.  Storage is allocated on first use and returned by
 * tk_buf_trim() when the buffer is empty, so an idle owner costs nothing.
 * A buffer never grows past max bytes of content.
 */
struct tk_buf {
	char *data;
	size_t off; /* start of unread content */
	size_t len; /* bytes of content */
	size_t cap; /* allocated bytes */
	size_t max; /* content limit */
};

void tk_buf_init(struct tk_buf *b, size_t max);
/* Free storage; the buffer stays usable (empty). */
void tk_buf_free(struct tk_buf *b);
/* Append n bytes; 0, or -ENOBUFS (nothing appended) past max, -ENOMEM. */
int tk_buf_append(struct tk_buf *b, const void *p, size_t n);
/*
 * Make room for at least n more bytes and return where to write them (NULL
 * with -ENOBUFS/-ENOMEM in *err); commit what was written with
 * tk_buf_commit().
 */
char *tk_buf_reserve(struct tk_buf *b, size_t n, int *err);
void tk_buf_commit(struct tk_buf *b, size_t n);
/* Drop n bytes from the front (n <= len). */
void tk_buf_consume(struct tk_buf *b, size_t n);
static inline const char *
tk_buf_peek(const struct tk_buf *b)
{
	return b->data ? b->data + b->off : NULL;
}
static inline size_t
tk_buf_len(const struct tk_buf *b)
{
	return b->len;
}
static inline size_t
tk_buf_room(const struct tk_buf *b)
{
	return b->max - b->len;
}
/* Release storage if empty. */
void tk_buf_trim(struct tk_buf *b);

/*
 * Line framing: a pure parser.  Looks for the first '\n' in data[0..len).
 * Returns the bytes consumed including the terminator (> 0) with the line
 * length without "\n" or "\r\n" in *line_len; 0 if no complete line yet
 * while the line could still fit (len <= max, or len == max + 1 ending in
 * '\r'); TK_ELINETOOLONG once it cannot (a line of exactly max bytes plus
 * "\n" or "\r\n" is accepted).  Reads only data[0..min(len, max + 2)).
 */
ssize_t tk_line_parse(const char *data, size_t len, size_t max,
		      size_t *line_len);

/*
 * URLs and HTTP/1.1 responses: pure parsers for `tcpkit get`.  They allocate
 * nothing and read only the bytes given; results are spans (offset and
 * length) into the caller's buffer.
 */
struct tk_span {
	size_t off;
	size_t len;
};

struct tk_url {
	struct tk_span scheme; /* "http", lower-cased by the caller if needed */
	struct tk_span host;   /* without brackets for IPv6 literals */
	struct tk_span port;   /* empty if absent */
	struct tk_span target; /* path and query, "" if absent (means "/") */
	bool host_is_ipv6;
};

/*
 * Parse "scheme://host[:port][/path][?query][#fragment]" (the fragment is
 * dropped, userinfo is refused).  Returns 0 or TK_EBADURL.
 */
int tk_url_parse(const char *text, size_t len, struct tk_url *out);
/*
 * Resolve ref, a URI reference such as an HTTP Location value ("/new",
 * "../x?q", "//host/p", "https://host/"), against base, an absolute URL
 * tk_url_parse() accepts (RFC 3986 section 5.2; dot segments removed, the
 * fragment dropped).  The result goes to out, NUL-terminated; it is not
 * checked beyond that: parse it.  Returns its length, TK_EBADURL (base
 * malformed, spaces or controls in ref), TK_ETOOBIG (outlen too small) or
 * -ENOMEM.
 */
ssize_t tk_url_resolve(const char *base, const char *ref, char *out,
		       size_t outlen);

/* A header array of this size is what tk_http_get() uses. */
#define TK_HTTP_MAX_HEADERS 100

struct tk_http_header {
	struct tk_span name;
	struct tk_span value; /* surrounding white space removed */
};

struct tk_http_response {
	int minor_version; /* HTTP/1.x */
	int status;	   /* 100..999 */
	struct tk_span reason;
	/*
	 * The caller's array of max_headers entries (set both before
	 * parsing); nheaders is how many the head had.
	 */
	struct tk_http_header *headers;
	size_t max_headers;
	size_t nheaders;
};

/*
 * Parse a response head (status line and headers up to the empty line).
 * last_len is the length buf had at the previous call for the same head
 * that returned 0 (0 on the first call): a head still without its empty
 * line is then answered "incomplete" from the new bytes alone, so a
 * streaming reader does not parse the start again on every read (as
 * picohttpparser does).  Errors are found on the first call and once the
 * head is complete.  Returns the head's length (> 0), 0 if incomplete,
 * TK_EHTTP if malformed, TK_ETOOBIG with more than r->max_headers headers.
 */
ssize_t tk_http_parse_response(const char *buf, size_t len, size_t last_len,
			       struct tk_http_response *r);

/*
 * The value of header name (case-insensitive) or NULL; with several, the
 * first.  *vlen gets its length.
 */
const char *tk_http_header_find(const char *buf,
				const struct tk_http_response *r,
				const char *name, size_t *vlen);

enum tk_http_body {
	TK_HTTP_BODY_NONE,    /* 1xx, 204, 304, or a HEAD request */
	TK_HTTP_BODY_LENGTH,  /* Content-Length bytes */
	TK_HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
	TK_HTTP_BODY_CLOSE,   /* until the server closes */
};

/*
 * How the body of r is framed (RFC 9112 section 6.3).  *length is set for
 * TK_HTTP_BODY_LENGTH.  Returns 0 or TK_EHTTP (bad or conflicting
 * Content-Length, unknown transfer coding).
 */
int tk_http_body_framing(const char *buf, const struct tk_http_response *r,
			 bool head_request, enum tk_http_body *kind,
			 uint64_t *length);

/* Chunked transfer-coding decoder; state only, no buffer. */
struct tk_chunked {
	int state;
	uint64_t remaining; /* data bytes left in the current chunk */
	size_t linelen;	    /* bytes of the current size/trailer line */
};

#define TK_CHUNK_MORE 0 /* all input consumed, no data in it */
#define TK_CHUNK_DATA 1 /* a data span is ready */
#define TK_CHUNK_DONE 2 /* last chunk and trailers read */

void tk_chunked_init(struct tk_chunked *d);
/*
 * Decode from in[0..len).  Returns TK_CHUNK_DATA with the data at
 * in[*data_off .. *data_off + *data_len) and *consumed up to its end;
 * TK_CHUNK_MORE with *consumed == len; TK_CHUNK_DONE with *consumed at the
 * end of the message; or TK_EHTTP.  Call again with the rest of the input.
 */
int tk_chunked_decode(struct tk_chunked *d, const char *in, size_t len,
		      size_t *consumed, size_t *data_off, size_t *data_len);

/*
 * An asynchronous HTTP/1.1 client: one GET or HEAD of an http:// or
 * https:// URL on a loop, one connection per exchange ("Connection:
 * close"), redirects followed when asked.  It parses, frames and decodes;
 * what to do with the head and the body is the caller's, through
 * callbacks.  Names are resolved with tk_resolve(), which blocks.
 */
struct tk_http_req;
struct tk_loop;
struct tk_conn;
struct tk_tls_ctx;
struct tk_proxy;

struct tk_http_opts {
	bool head; /* HEAD instead of GET: a head and no body */
	/*
	 * Extra "Name: value" fields, NULL-terminated (copied; each checked
	 * with tk_http_field_check()).  A Host, User-Agent or Accept field
	 * replaces the default one; a Connection field is dropped (one
	 * exchange per connection: "close"); Host, Authorization, Cookie and
	 * Proxy-Authorization are sent only to the first URL's host.
	 */
	const char *const *headers;
	bool follow;	      /* follow 301, 302, 303, 307, 308 + Location */
	unsigned max_redirs;  /* with follow: one more is TK_EREDIRECTS */
	bool allow_downgrade; /* follow https -> http (TK_EDOWNGRADE) */
	uint64_t connect_timeout_ms; /* per hop, all addresses; 0: default */
	uint64_t idle_timeout_ms;    /* no data for this long; 0: none */
	uint64_t max_time_ms;	     /* the whole exchange, all hops; 0: none */
	int family;		     /* AF_UNSPEC, AF_INET or AF_INET6 */
	/*
	 * For https:// hops: a context from tk_tls_ctx_new_client() (not
	 * owned; it must outlive the request); NULL: https:// fails with
	 * TK_ETLSCONFIG.  servername replaces the URL's host for the
	 * certificate check and SNI, on hops to that host only.
	 */
	struct tk_tls_ctx *tls;
	const char *servername;
	/*
	 * Send "Accept-Encoding: gzip, deflate" and inflate a body in
	 * either coding (zlib); a corrupt or cut stream is TK_ECODING.
	 */
	bool compressed;
	/*
	 * Every hop through this proxy (tcpkit/proxy.h; copied; NULL:
	 * none), an https:// one's TLS to the target through the tunnel.
	 * An http:// hop is tunnelled with CONNECT too, not sent to an HTTP
	 * proxy as an absolute URL; family does not apply (the proxy's name
	 * and the target's are resolved as tk_conn_connect_host() does).
	 * The library reads no environment: a
	 * program that honours ALL_PROXY and NO_PROXY decides and passes it.
	 */
	const struct tk_proxy *proxy;
};

/* Fill opts with the defaults: GET, no redirects followed (max 10). */
void tk_http_opts_init(struct tk_http_opts *opts);

/* Where an exchange is, for the caller's messages (tk_http_req_info()). */
enum tk_http_phase {
	TK_HTTP_CONNECTING, /* resolving, connecting, TLS handshake */
	TK_HTTP_HEAD,	    /* request sent, reading a head */
	TK_HTTP_BODY,	    /* reading the final response's body */
	TK_HTTP_DONE,	    /* complete */
};

struct tk_http_info {
	const char *url;     /* the current hop's URL */
	const char *request; /* the request sent to it */
	enum tk_http_phase phase;
	int status;		/* of the last head, 0 before one */
	enum tk_http_body kind; /* the final response's framing */
	uint64_t length;	/* its Content-Length */
	uint64_t got;		/* body bytes, transfer coding removed */
	uint64_t ninterim;	/* 1xx heads on this hop */
	unsigned redirects;	/* followed so far */
	size_t head_bytes;	/* of an incomplete head */
	/*
	 * A redirect's target, resolved against url; or, when the Location
	 * could not be resolved, the raw Location (location_resolved
	 * false).  NULL without one.
	 */
	const char *location;
	bool location_resolved;
	/* What went wrong, in words (TK_EHTTP, TK_ETRUNCATED, ...), or "". */
	const char *detail;
	/* tk_conn_last_error() of the hop's connection, or "". */
	const char *conn_error;
	/* The hop's connection, or NULL (NULL once it is gone, but in done). */
	struct tk_conn *conn;
};

/*
 * The callbacks; all but done are optional.  A callback returning a
 * negative code ends the exchange: done follows with that code.
 *
 * open:     connected to a hop (TLS verified); the request goes next.
 * head:     a complete head, head[0..len) as received, parsed in r
 *           (valid for the call): interim (1xx) ones, a redirect about
 *           to be followed, and the final one.
 * redirect: about to follow status's Location to url.
 * body:     len bytes of the final response's body, transfer coding
 *           removed (and inflated with compressed).
 * done:     the end, once: err 0 when the whole body was received, else
 *           why (the resolver's, tk_conn_connect()'s and the
 *           connection's codes; TK_EHTTP malformed response; TK_ETOOBIG
 *           head over 64 KiB or too many fields; TK_ETRUNCATED closed
 *           before the end of a head or body, or an https body delimited
 *           by the close without TLS close_notify; TK_EIDLE;
 *           TK_ETIMEDOUT over max_time_ms; TK_EREDIRECTS, TK_EREDIRECT
 *           (not http(s), malformed), TK_EDOWNGRADE; TK_ECODING).  The
 *           request is freed when done returns.
 */
struct tk_http_cb {
	int (*open)(struct tk_http_req *req, struct tk_conn *c, void *arg);
	int (*head)(struct tk_http_req *req, const struct tk_http_response *r,
		    const char *head, size_t len, void *arg);
	int (*redirect)(struct tk_http_req *req, int status, const char *url,
			void *arg);
	int (*body)(struct tk_http_req *req, const char *data, size_t len,
		    void *arg);
	void (*done)(struct tk_http_req *req, int err, void *arg);
};

/*
 * Start fetching url on loop.  Returns 0 with *out set, the exchange under
 * way; or a negative code, and then no callback is ever called:
 * TK_EBADURL (malformed, or not http or https), -EINVAL (a bad header
 * field), TK_ETLSCONFIG (https without opts->tls), the resolver's codes,
 * tk_conn_connect()'s, -ENOMEM.
 */
int tk_http_get(struct tk_loop *loop, const char *url,
		const struct tk_http_opts *opts, const struct tk_http_cb *cb,
		void *arg, struct tk_http_req **out);

/* Where req is (valid until done returns). */
const struct tk_http_info *tk_http_req_info(const struct tk_http_req *req);

/*
 * Stop req before its done callback ran: no callback is called any more.
 * The connection closes on the loop's next round (run it once before
 * tk_loop_free()), and req is freed then.
 */
void tk_http_req_cancel(struct tk_http_req *req);

/*
 * Whether line is a well-formed "Name: value" field to send: a token name,
 * a colon, a value of visible characters, spaces and tabs (no CR, LF or
 * other controls).  0 or -EINVAL.
 */
int tk_http_field_check(const char *line);

/*
 * Latency histograms: log-linear buckets (256 per power of two), so any
 * percentile is reported within 0.4% of the true value; exact below 256.
 * Values are unsigned integers in any unit (tcpkit bench uses ns) up to
 * TK_HIST_MAX; larger values are clamped and counted.  Fixed size, no
 * allocation: record() is a few instructions.
 */
#define TK_HIST_SUB_BITS 8
#define TK_HIST_MAX_BITS 42 /* about 73 minutes in nanoseconds */
#define TK_HIST_MAX	 ((UINT64_C(1) << TK_HIST_MAX_BITS) - 1)
#define TK_HIST_BUCKETS                                                        \
	((TK_HIST_MAX_BITS - TK_HIST_SUB_BITS + 2) << (TK_HIST_SUB_BITS - 1))

struct tk_hist {
	uint64_t count;
	uint64_t clamped; /* values above TK_HIST_MAX */
	uint64_t min;
	uint64_t max;
	long double sum;
	uint64_t buckets[TK_HIST_BUCKETS];
};

void tk_hist_init(struct tk_hist *h);
void tk_hist_record(struct tk_hist *h, uint64_t v);
/* Add src's values to dst. */
void tk_hist_merge(struct tk_hist *dst, const struct tk_hist *src);
/*
 * The value at percentile p (0..100): the midpoint of the bucket holding
 * the p-th value, clamped to [min, max]; 0 for an empty histogram.
 */
uint64_t tk_hist_percentile(const struct tk_hist *h, double p);
double tk_hist_mean(const struct tk_hist *h);

/*
 * Event loop: epoll, timers in a min-heap, signals through signalfd,
 * cross-thread wakeup through eventfd.  One loop belongs to one thread;
 * only tk_loop_post() and tk_loop_stop() may be called from others.
 *
 * Threads, for the whole library: everything that takes a loop, a timer
 * or a connection runs on the thread of the loop it belongs to (a
 * server's worker for its connections), and nowhere else: no call on a
 * connection from another thread, not even a getter.  Safe from any
 * thread: tk_loop_post(), tk_loop_stop(), tk_server_get_stats(),
 * tk_server_request_stop() and tk_server_stopping(), and the functions
 * that take no loop (addresses, tk_resolve(), errors).
 * tk_server_drain() and tk_server_stop() belong to the owner's thread
 * (with one worker they act on the owner's loop directly).
 * tk_resolve() blocks (getaddrinfo): never call it on a loop's thread
 * with work waiting; tk_conn_connect_host() resolves on a thread of its
 * own.
 *
 * Pointers: an object argument (loop, conn, timer, server, opts...) must
 * not be NULL unless its comment says so; the exceptions are the free
 * and close functions (tk_loop_free(), tk_loop_close(), tk_timer_free(),
 * tk_conn_close(), tk_conn_abort(): NULL does nothing) and options
 * (NULL: defaults).
 */
struct tk_loop;
struct tk_timer;

#define TK_READABLE 0x1u
#define TK_WRITABLE 0x2u
#define TK_HANGUP   0x4u /* error or hang-up; reported with the interest */

typedef void (*tk_io_cb)(struct tk_loop *loop, int fd, unsigned events,
			 void *arg);
typedef void (*tk_timer_cb)(struct tk_timer *t, void *arg);
typedef void (*tk_signal_cb)(struct tk_loop *loop, int signo, void *arg);
typedef void (*tk_work_cb)(struct tk_loop *loop, void *arg);

/*
 * A new loop in *out: 0, or a negative code (-ENOMEM, -EMFILE...) with
 * *out NULL.
 */
int tk_loop_new(struct tk_loop **out);
/*
 * Frees the loop.  Connections still open are closed first with
 * -ECANCELED, and their close callbacks run inside this call (the loop is
 * still whole for them): none is lost with its socket.  Fds still watched
 * are not closed and timers are not freed: they belong to their owners,
 * who free them (after this, only tk_timer_free() may be called on them).
 * Close callbacks of connections closed earlier run here too, if the loop
 * has not run since.
 */
void tk_loop_free(struct tk_loop *loop);
/*
 * Free the loop only if nothing lives on it: 0 (freed), or -EBUSY while a
 * connection is open, a tk_timer_new() timer is not freed or an fd is
 * watched (a server's listeners count, its workers' own loops do not);
 * nothing is freed then: close them (tk_loop_walk() finds them), run the
 * loop so their close callbacks run, and call again.  Close callbacks of
 * connections already closed run first.
 */
int tk_loop_close(struct tk_loop *loop);

/* What tk_loop_walk() visits: one live handle. */
enum tk_handle_type {
	TK_HANDLE_CONN,	 /* conn: an open connection (client or a server's) */
	TK_HANDLE_TIMER, /* timer: from tk_timer_new(), armed or not */
	TK_HANDLE_FD,	 /* fd: watched by tk_loop_watch() */
};

struct tk_handle {
	enum tk_handle_type type;
	struct tk_conn *conn;
	struct tk_timer *timer;
	int fd;	   /* TK_HANDLE_FD's, or a connection's socket; else -1 */
	void *arg; /* a timer's or watcher's callback argument */
};

typedef void (*tk_walk_cb)(struct tk_loop *loop, const struct tk_handle *h,
			   void *arg);
/*
 * Visit every live handle of the loop (h is borrowed for the call):
 * connections, then timers, then watched fds.  The callback may close or
 * free the handle it is given (tk_conn_close(), tk_conn_abort(),
 * tk_timer_free(), tk_loop_unwatch()), but no other.  Returns how many
 * were visited; cb may be NULL to count them.  The library's own fds (a
 * connection's socket) are part of their connection, not visited alone.
 */
size_t tk_loop_walk(struct tk_loop *loop, tk_walk_cb cb, void *arg);
/*
 * Run until tk_loop_stop().  Returns 0, or -errno if epoll fails.  A loop
 * with nothing to wait for still waits (for posts): stop it explicitly.
 */
int tk_loop_run(struct tk_loop *loop);
/* Run one round: wait up to timeout_ms (-1: until an event).  0 or -errno. */
int tk_loop_run_once(struct tk_loop *loop, int timeout_ms);
/* Make tk_loop_run() return after the current round; any thread. */
void tk_loop_stop(struct tk_loop *loop);
/* Monotonic milliseconds, cached at the start of each round. */
uint64_t tk_loop_now(const struct tk_loop *loop);
void tk_loop_update_time(struct tk_loop *loop);

/*
 * Watch fd for events (TK_READABLE | TK_WRITABLE, 0 to keep it registered
 * but quiet).  One watcher per fd.  Returns 0, -EEXIST, -EPERM (fd does not
 * support polling, e.g. a regular file) or -errno.
 */
int tk_loop_watch(struct tk_loop *loop, int fd, unsigned events, tk_io_cb cb,
		  void *arg);
int tk_loop_modify(struct tk_loop *loop, int fd, unsigned events);
/* Stop watching fd (does not close it).  Pending events for it are dropped. */
void tk_loop_unwatch(struct tk_loop *loop, int fd);

/*
 * Timers.  A new timer, stopped, in *out: 0, or -ENOMEM (or -EINVAL) with
 * *out NULL.  Free it with tk_timer_free().
 */
int tk_timer_new(struct tk_loop *loop, tk_timer_cb cb, void *arg,
		 struct tk_timer **out);
/*
 * (Re)arm to fire after timeout_ms, then every repeat_ms if non-zero.  0,
 * or -ENOMEM (growing the loop's timer heap failed): the timer is then
 * stopped.
 */
int tk_timer_start(struct tk_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
void tk_timer_stop(struct tk_timer *t);
bool tk_timer_is_active(const struct tk_timer *t);
/* Stops and frees; safe from the timer's own callback. */
void tk_timer_free(struct tk_timer *t);

/*
 * Deliver signo to cb on this loop instead of its default action.  Call
 * it before creating threads, on the loop's thread: with the epoll backend
 * the signal is blocked there (threads created later inherit the mask) and
 * read from a signalfd; with the poll backend a handler passes it to the
 * loop through a pipe (other threads should block it), and a signal
 * belongs to one loop at a time (-EBUSY for a second).  tk_loop_free()
 * gives the signal back its earlier disposition; a signal that was
 * blocked before stays blocked.
 */
int tk_loop_signal(struct tk_loop *loop, int signo, tk_signal_cb cb, void *arg);

/*
 * Run cb(loop, arg) on the loop's thread at the start of its next round.
 * Safe from any thread; wakes the loop.  0 or -ENOMEM.
 */
int tk_loop_post(struct tk_loop *loop, tk_work_cb cb, void *arg);

/*
 * Connections.  A connection is owned by the loop it lives on and ends only
 * through tk_conn_close() (or an error, which closes it); its close callback
 * runs exactly once, after which the connection is freed - never while one
 * of its callbacks is on the stack.
 *
 * When close callbacks run: never inside the call that closes (not in
 * tk_conn_close(), tk_conn_abort(), tk_conn_write()...), but after the
 * loop's current callback returns, in the same round (or in
 * tk_loop_free(), tk_loop_close(), tk_server_free() if the loop does not
 * run again).  From the close on, tk_conn_is_open() is false and writes
 * fail with -EPIPE; the pointer stays valid until the close callback has
 * returned, and not a moment longer.  A connection whose connect fails
 * or is cancelled gets its close callback without open.
 */
struct tk_conn;
struct tk_server;
struct tk_tls_ctx;
struct tk_proxy;

/*
 * The service interface: what a server runs for every accepted connection
 * and what a client connection reports to.  Every callback is optional.
 *
 * open:  the connection is established.  Return 0, or a negative code to
 *        close it at once (close is then called with that code).
 * data:  n > 0 bytes arrived; data is borrowed for the duration of the call.
 *        n == TK_EOF: the peer half-closed; writing is still allowed.
 * drain: pending output has fallen to the connection's drain_lowat (0
 *        by default: all written to the kernel), once per time it rose
 *        above it.
 * close: the connection is over; err is 0 for an orderly end, or the reason
 *        (-ECONNRESET, TK_EIDLE, TK_ECONNTIMEDOUT...).  For a client whose
 *        connect failed, close is called without open.
 */
/*
 * TK_SERVICE_TEXT: a text protocol: the library's own words to its peer
 * are text lines (a server's busy line, the line-too-long error below).
 *
 * TK_SERVICE_LINE_FRAMING: data delivers one complete line per call, its
 * "\n" (or "\r\n") included; a last line without one is delivered as it
 * is before TK_EOF.  A line longer than max_line (tk_conn_opts; a
 * server's tk_server_opts.max_line by default), "\r\n" not counted, is
 * never delivered: every line before it is, then the connection ends
 * with TK_ELINETOOLONG (input discarded, output flushed, FIN; with
 * TK_SERVICE_TEXT the peer is told "error: line too long\n" first).  With
 * line_timeout_ms, each line must be complete within that time: the
 * first from the open, each next one from its first byte, closing with
 * TK_ELINETIMEOUT otherwise (the framing uses the connection's deadline,
 * tk_conn_set_deadline()).  tk_conn_pause() inside data holds the lines
 * not yet delivered until tk_conn_resume().  Output room for an answer
 * of max_line + 2 bytes and the error line is reserved
 * (tk_conn_reserve_output()).
 */
#define TK_SERVICE_TEXT		0x1u
#define TK_SERVICE_LINE_FRAMING 0x2u

struct tk_service {
	const char *name;
	unsigned flags;
	int (*open)(struct tk_conn *c, void *arg);
	void (*data)(struct tk_conn *c, const char *data, ssize_t n, void *arg);
	void (*drain)(struct tk_conn *c, void *arg);
	void (*close)(struct tk_conn *c, int err, void *arg);
	/*
	 * stop:  the server is draining: finish what is in flight, then end
	 *        (default: tk_conn_end()).
	 */
	void (*stop)(struct tk_conn *c, void *arg);
};

#define TK_DEFAULT_MAX_PENDING		(256u * 1024) /* read pauses above */
#define TK_DEFAULT_MAX_OUTPUT		(16u * 1024 * 1024) /* writes fail above */
#define TK_DEFAULT_CONNECT_TIMEOUT_MS	10000u
#define TK_DEFAULT_LINGER_MS		2000u
#define TK_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000u
#define TK_HAPPY_EYEBALLS_DELAY_MS	250u

struct tk_conn_opts {
	uint64_t connect_timeout_ms; /* all addresses together; 0: default */
	uint64_t idle_timeout_ms;    /* no byte either way; 0: none */
	uint64_t linger_ms;	     /* tk_conn_end() wait for peer FIN */
	/*
	 * Stop reading while output waiting is above this (backpressure: a
	 * peer that does not read cannot make us buffer without end); 0:
	 * default.  A client that queues more than this before it reads the
	 * answer (a big upload to an echoing peer) must raise it, up to
	 * max_output, or each side waits for the other once the kernel's
	 * buffers are full; `tcpkit connect` does.
	 */
	size_t max_pending;
	/*
	 * tk_conn_write() fails above (and the connection is reset); 0:
	 * default.  Never below max_pending + the service's reserve
	 * (tk_conn_reserve_output()): raised to it.
	 */
	size_t max_output;
	size_t read_size; /* bytes per read; 0: 64 KiB */
	/*
	 * The service's drain runs when pending output, having been above
	 * this, falls to it or below: a writer that stopped at max_pending
	 * (or at tk_conn_room()) refills before the socket runs dry.  0:
	 * only once everything is written.
	 */
	size_t drain_lowat;
	const struct tk_addr *source; /* local address to bind, or NULL */
	/*
	 * With source NULL: the local port to bind (on the wildcard address
	 * of each family tried); 0: any.  A port in use fails the attempt
	 * with -EADDRINUSE.
	 */
	uint16_t source_port;
	/*
	 * TCP keepalive (SO_KEEPALIVE): after keepalive_idle seconds of
	 * silence a probe every keepalive_intvl seconds; keepalive_cnt
	 * unanswered close the connection (-ETIMEDOUT).  0: the system's
	 * value for that one.  A server sets them on its listeners, which
	 * pass them on to every accepted socket.
	 */
	bool keepalive;
	unsigned keepalive_idle, keepalive_intvl, keepalive_cnt;
	/*
	 * Kernel send buffer (SO_SNDBUF), a hard cap.  0: the system's,
	 * autotuned, with at most max_pending unsent bytes in it
	 * (TCP_NOTSENT_LOWAT): a peer that stops reading costs the kernel
	 * no more than it costs us, and a fast one keeps full speed.
	 */
	size_t sndbuf;
	bool no_delay; /* TCP_NODELAY */
	/*
	 * TLS: a context from tk_tls_ctx_new_client() (client connections)
	 * or tk_tls_ctx_new_server() (a server's), shared; each connection
	 * holds a reference while it lives (freeing the context early is
	 * safe).  NULL for plain TCP.  The handshake runs after connect or
	 * accept, under its own deadline, and the service's open runs only
	 * once the peer is verified.
	 */
	struct tk_tls_ctx *tls;
	/*
	 * Client: the name checked against the certificate and sent as SNI
	 * (copied at connect; an IP literal is checked as an address and
	 * not sent); NULL: the connected peer's IP address is checked.
	 */
	const char *servername;
	uint64_t handshake_timeout_ms; /* 0: TK_DEFAULT_HANDSHAKE_TIMEOUT_MS */
	/*
	 * A TK_SERVICE_LINE_FRAMING service's longest line (0: a server's
	 * max_line, else TK_DEFAULT_MAX_LINE) and each line's deadline (0: a
	 * server's line_timeout_ms, else none).
	 */
	size_t max_line;
	uint64_t line_timeout_ms;
	/*
	 * Client: go through this proxy (tcpkit/proxy.h; copied at connect,
	 * NULL: none).  Only tk_conn_connect_host() and
	 * tk_conn_connect_endpoint() (TCP and TLS) take one: the target is a
	 * name for the proxy; tk_conn_connect() returns -EINVAL with one.  The
	 * proxy's name is resolved, and its handshake runs, under
	 * connect_timeout_ms; then TLS, if any, to the target through the
	 * tunnel.  tk_conn_peer() is the proxy's address.  Failures:
	 * TK_EPROXYDENIED, TK_EPROXYAUTH, TK_EPROXYTARGET, TK_EPROXYPROTO,
	 * with the proxy's reply in tk_conn_last_error().
	 */
	const struct tk_proxy *proxy;
	/*
	 * Client, tk_conn_connect_host() without a proxy: only the addresses
	 * of the name this list accepts (tcpkit/acl.h) are tried; none:
	 * close with TK_EDENIED.  Not copied: it must outlive the connect.
	 */
	const struct tk_acl *acl;
};

/* Fill opts with the defaults. */
void tk_conn_opts_init(struct tk_conn_opts *opts);

/*
 * Connect to the addresses in list (copied), trying each under one deadline;
 * IPv6 and IPv4 are raced Happy Eyeballs style when both are present.
 * The service's open runs on success; close(err) if every address failed,
 * with the last error (details in tk_conn_last_error()).  Returns 0 with
 * *out set (the connection is then in progress) or a negative code, in
 * which case no callback is ever called.
 */
int tk_conn_connect(struct tk_loop *loop, const struct tk_addrlist *list,
		    const struct tk_conn_opts *opts,
		    const struct tk_service *svc, void *arg,
		    struct tk_conn **out);

/*
 * Connect to host (a name or an IP literal) at port (a number or service
 * name; NULL: 0) without blocking the loop: the name is resolved on a
 * short-lived thread of its own (tk_resolve(), AF_UNSPEC), the answer
 * comes back through tk_loop_post(), then the addresses are tried as by
 * tk_conn_connect().  connect_timeout_ms covers the resolution too.  With
 * TLS, the certificate is checked against opts->servername, or host when
 * that is NULL.  Returns 0 with *out set, or -EINVAL, -ENOMEM or -errno
 * from thread creation, in which case no callback is ever called.  Then
 * as tk_conn_connect(): open on success, or close(err) without open: a
 * resolution error (TK_ENOHOST, TK_EBADPORT...: tk_conn_last_error() says
 * "HOST: why"), the last connect error, or TK_ECONNTIMEDOUT.
 *
 * Cancelling: tk_conn_close() (or tk_conn_end()) while the name resolves
 * closes c at once; its close callback runs (err as given) and nothing of
 * the resolution is ever seen after it: the thread finishes on its own and
 * its answer is thrown away.  tk_loop_free() does the same with
 * -ECANCELED.
 */
int tk_conn_connect_host(struct tk_loop *loop, const char *host,
			 const char *port, const struct tk_conn_opts *opts,
			 const struct tk_service *svc, void *arg,
			 struct tk_conn **out);

/*
 * Queue len bytes for sending (written at once when the socket allows).
 * Returns 0; -EPIPE after shutdown, end or close (nothing queued); or
 * -ENOBUFS if pending output would exceed max_output, in which case
 * nothing is queued and c is closed with -ENOBUFS and a reset, so that a
 * byte accepted is never dropped in silence: the peer sees the loss as a
 * reset, not as a clean end.  A client that wants to wait instead checks
 * tk_conn_pending() first.  Other write errors close c too.
 */
int tk_conn_write(struct tk_conn *c, const void *data, size_t len);
/*
 * tk_conn_write() of the n buffers of iov together, all or nothing: their
 * total is checked against max_output first (over it: -ENOBUFS and the
 * reset, nothing sent); then every byte is written or queued.  -EINVAL if
 * n < 0.
 */
int tk_conn_writev(struct tk_conn *c, const struct iovec *iov, int n);
/*
 * Bytes tk_conn_write() would still take (max_output less what is
 * pending); 0 once c is not open, or shut down, or ending.  A writer that
 * must not be reset waits for drain when this is short.
 */
size_t tk_conn_room(const struct tk_conn *c);
/* The limits c runs under (its options, with defaults and reserve). */
size_t tk_conn_max_pending(const struct tk_conn *c);
size_t tk_conn_max_output(const struct tk_conn *c);
/*
 * The most by which the output one data callback writes may exceed the
 * bytes it was given (a kept partial line, a prefix).  Reads stop at
 * max_pending of output waiting, so room is kept above it: max_output is
 * raised to at least max_pending + extra.  A service calls this in open.
 */
void tk_conn_reserve_output(struct tk_conn *c, size_t extra);
/* Bytes accepted but not yet written to the kernel. */
size_t tk_conn_pending(const struct tk_conn *c);
/* Send FIN once pending output is written; reading goes on. */
void tk_conn_shutdown(struct tk_conn *c);
/*
 * Finish gracefully: write what is pending, send FIN, discard input until
 * the peer's FIN or linger_ms, then close with err 0.
 */
void tk_conn_end(struct tk_conn *c);
/* tk_conn_end(), but the close callback reports err (a reason to log). */
void tk_conn_end_error(struct tk_conn *c, int err);
/* Close now: pending output is dropped; close(err) follows. */
void tk_conn_close(struct tk_conn *c, int err);
/*
 * Close now with a reset (RST, SO_LINGER 0) instead of a FIN: the peer
 * sees an abortive end (ECONNRESET), never a clean one, and whatever the
 * kernel still held for it is dropped.  close(err) follows, as for
 * tk_conn_close().  What tk_conn_write() does when output overflows.
 */
void tk_conn_abort(struct tk_conn *c, int err);
/*
 * Close with err unless cleared before ms from now (0 clears): a deadline
 * for a protocol step, such as a line service's next line.
 */
void tk_conn_set_deadline(struct tk_conn *c, uint64_t ms, int err);
/* Stop / resume delivering data (application-level flow control). */
void tk_conn_pause(struct tk_conn *c);
void tk_conn_resume(struct tk_conn *c);
void tk_conn_set_idle_timeout(struct tk_conn *c, uint64_t ms);

void tk_conn_set_data(struct tk_conn *c, void *data);
void *tk_conn_data(const struct tk_conn *c);
struct tk_loop *tk_conn_loop(const struct tk_conn *c);
/* The server that accepted c, or NULL for a client connection. */
struct tk_server *tk_conn_server(const struct tk_conn *c);
const struct tk_addr *tk_conn_peer(const struct tk_conn *c);
const struct tk_addr *tk_conn_local(const struct tk_conn *c);
int tk_conn_fd(const struct tk_conn *c);
uint64_t tk_conn_bytes_in(const struct tk_conn *c);
uint64_t tk_conn_bytes_out(const struct tk_conn *c);
/* Milliseconds since the connection was opened (loop time). */
uint64_t tk_conn_age_ms(const struct tk_conn *c);
bool tk_conn_is_open(const struct tk_conn *c);
/* Human-readable detail of the last error ("" if none); owned by c. */
const char *tk_conn_last_error(const struct tk_conn *c);

/*
 * TLS through OpenSSL 3.  A context holds the configuration, certificates
 * and session-ticket keys; build it once (files are read now, before any
 * I/O) and share it by every connection and every server worker.  Defaults
 * follow Mozilla's "intermediate" profile: TLS 1.2 and 1.3, ECDHE key
 * exchange with AEAD ciphers only, groups X25519, P-256, P-384; no
 * renegotiation, no compression.  The library reads no environment: a
 * program that honours SSLKEYLOGFILE (as tcpkit does) passes it as
 * keylog_file.
 */
#define TK_TLS_1_2 12
#define TK_TLS_1_3 13

/* The longest message tk_tls_ctx_new_*() writes to why, with its NUL. */
#define TK_TLS_ERRLEN 256
/* A SHA-256 fingerprint as 64 lower-case hex digits and a NUL. */
#define TK_TLS_FPLEN 65

struct tk_tls_client_opts {
	const char *ca_file; /* trusted CAs (PEM); with ca_dir NULL too: */
	const char *ca_dir;  /* the system's trust store */
	bool insecure;	     /* no chain or name check (a pin still is) */
	/*
	 * "sha256:HEX": accept exactly the certificate, or public key
	 * (SubjectPublicKeyInfo), with this SHA-256; replaces the chain and
	 * name checks.  HEX may have ':' between bytes.
	 */
	const char *pin;
	const char *cert_file; /* client certificate chain (PEM), or NULL */
	const char *key_file;  /* its key; NULL: in cert_file */
	unsigned min_version;  /* TK_TLS_1_2 (0 too) or TK_TLS_1_3 */
	const char *alpn;      /* "h2,http/1.1", or NULL */
	/*
	 * Append session secrets here (NSS key log format, for Wireshark;
	 * created 0600), or NULL.  A file that cannot be opened is ignored.
	 */
	const char *keylog_file;
};

enum tk_tls_client_auth {
	TK_TLS_CLIENT_AUTH_NONE,
	TK_TLS_CLIENT_AUTH_OPTIONAL, /* verified if given */
	TK_TLS_CLIENT_AUTH_REQUIRED,
};

struct tk_tls_server_opts {
	/* Certificate chain (PEM, leaf first) and key; both NULL: an
	 * ephemeral self-signed certificate made in memory (P-256). */
	const char *cert_file;
	const char *key_file;	    /* NULL: in cert_file */
	const char *client_ca_file; /* CAs for client certificates */
	enum tk_tls_client_auth client_auth;
	unsigned min_version;	 /* TK_TLS_1_2 (0 too) or TK_TLS_1_3 */
	const char *alpn;	 /* accepted protocols, preferred first */
	bool no_tickets;	 /* no session resumption */
	const char *keylog_file; /* as in tk_tls_client_opts */
};

/*
 * Build a context.  Returns 0 with *out set, or TK_ETLSCONFIG (a file that
 * cannot be read or parsed, a key that does not match, a bad pin or ALPN
 * list) or -ENOMEM, with a one-line reason in why[0..whylen) (may be NULL).
 */
int tk_tls_ctx_new_client(const struct tk_tls_client_opts *opts,
			  struct tk_tls_ctx **out, char *why, size_t whylen);
int tk_tls_ctx_new_server(const struct tk_tls_server_opts *opts,
			  struct tk_tls_ctx **out, char *why, size_t whylen);
/*
 * Give up the caller's hold on a context: it is freed once no server or
 * connection uses it either (each holds a reference; tcpkit/reload.h).
 */
void tk_tls_ctx_free(struct tk_tls_ctx *ctx);
/* SHA-256 of the context's own certificate (a pin for clients); 0 or -ENOENT
 * when it has none. */
int tk_tls_ctx_fingerprint(const struct tk_tls_ctx *ctx,
			   char out[TK_TLS_FPLEN]);

/* What a TLS connection negotiated, and whom it talks to. */
struct tk_tls_info {
	char version[16];  /* "TLSv1.3" */
	char cipher[64];   /* "TLS_AES_128_GCM_SHA256" */
	char group[32];	   /* key exchange group, "X25519", or "" */
	char alpn[64];	   /* "" if none */
	bool resumed;	   /* an abbreviated (session) handshake */
	bool peer_cert;	   /* the rest is set only if the peer sent one */
	char subject[256]; /* RFC 2253 */
	char issuer[256];
	char not_before[32]; /* "2026-11-24T10:00:00Z" */
	char not_after[32];
	char sha256[TK_TLS_FPLEN];
};

/* Whether c runs TLS (handshake done or in progress). */
bool tk_conn_is_tls(const struct tk_conn *c);
/* Fill info once the handshake is done: 0, or -ENOTCONN. */
int tk_conn_tls_info(const struct tk_conn *c, struct tk_tls_info *info);
/*
 * SHA-256 of the certificate the peer presented, even one that failed
 * verification (a pin that would accept it): 0, -ENOENT if it sent none,
 * -ENOTCONN without TLS.
 */
int tk_conn_tls_peer_fingerprint(const struct tk_conn *c,
				 char out[TK_TLS_FPLEN]);
/*
 * A TLS connection whose peer closed (the data callback saw
 * TK_EOF) with a bare FIN, no close_notify: what was read may be cut
 * short.  Most peers close this way, so it is still an end of stream;
 * only data delimited by the close needs to ask.
 */
bool tk_conn_tls_truncated(const struct tk_conn *c);
/*
 * Do the first bytes (n of them, at least 5 to say yes) a plain client got
 * look like a TLS record header: an alert (type 0x15, length 2) or a
 * handshake record (0x16, at most 2^14 + 2048 bytes), version 3.x?  A TLS
 * server sent plain bytes answers that way, when it answers at all
 * (tcpkit serve --tls does): the usual sign of a missing --tls or an
 * http:// meant as https://.
 */
bool tk_tls_looks_like_record(const void *data, size_t n);

/*
 * Servers: listeners on one or more addresses, running a service for every
 * accepted connection.  With workers > 1 the server is shared-nothing: N
 * threads, each with its own loop and its own SO_REUSEPORT listening
 * socket per address; a connection lives and dies on one worker, and the
 * service's callbacks (and on_event) run on that worker's thread.  With
 * workers <= 1 everything runs on the loop given to tk_server_new().
 */
#define TK_DEFAULT_BACKLOG  511
#define TK_DEFAULT_MAX_LINE 8192u
#define TK_SERVER_BUSY_LINE "busy: too many connections, try again later\n"

enum tk_server_event {
	TK_SERVER_OPEN,	 /* a connection was accepted */
	TK_SERVER_CLOSE, /* a connection ended; err says why */
	TK_SERVER_ERROR, /* accept failed (err); the server goes on */
	/*
	 * Refused (c is NULL): over max_conns (err -EUSERS), or by the
	 * access list (err TK_EDENIED), or for the PROXY protocol: an
	 * untrusted sender (TK_EPPUNTRUSTED, peer the sender), a bad header
	 * (TK_EPPHEADER), none in time (TK_ETIMEDOUT) or a close before its
	 * end (TK_ETRUNCATED).
	 */
	TK_SERVER_REJECT,
	/*
	 * A TLS handshake finished, just before the service's open:
	 * tk_conn_tls_info(c) tells who the client is (mutual TLS).
	 */
	TK_SERVER_HANDSHAKE,
	/*
	 * After tk_server_drain(), the last connection is gone (at once if
	 * there was none).  Once, on the owner's loop; c and peer are NULL.
	 */
	TK_SERVER_DRAINED,
};

/*
 * peer is the client's address for OPEN, CLOSE and REJECT (borrowed for
 * the call), NULL for ERROR; c is NULL for ERROR and REJECT.
 */
typedef void (*tk_server_event_cb)(struct tk_server *s, enum tk_server_event ev,
				   struct tk_conn *c,
				   const struct tk_addr *peer, int err,
				   void *arg);

struct tk_server_opts {
	int backlog;	    /* 0: TK_DEFAULT_BACKLOG */
	unsigned workers;   /* 0 or 1: the caller's loop; N: N threads */
	uint64_t max_conns; /* open connections at most; 0: no limit */
	/*
	 * Line services: longest line, and the deadline for each line (the
	 * first from the connection's start); conn's max_line and
	 * line_timeout_ms default to them (TK_SERVICE_LINE_FRAMING).
	 */
	size_t max_line;	  /* 0: TK_DEFAULT_MAX_LINE */
	uint64_t line_timeout_ms; /* 0: none */
	struct tk_conn_opts conn;
	/* Optional; runs on the worker's thread (DRAINED: the owner's). */
	tk_server_event_cb on_event;
	void *event_arg;
	/*
	 * Peers refused right after accept, before a byte is read or sent
	 * (tcpkit/acl.h); NULL: everyone.  The server takes a reference
	 * of its own (tcpkit/reload.h: the caller may free theirs).
	 * With proxy_protocol, matched against the real client's address,
	 * once the header is in.
	 */
	const struct tk_acl *acl;
	/*
	 * PROXY protocol (tcpkit/proxyproto.h): every connection must begin
	 * with a v1 or v2 header, read right after accept (before TLS and
	 * before the service sees a byte), complete within
	 * conn.handshake_timeout_ms and TK_PP_MAX bytes; the bytes after it
	 * stay for the connection.  Only peers that proxy_from allows may
	 * send one (its allow list names the balancers; required: NULL with
	 * proxy_protocol is -EINVAL at tk_server_new()).  A connection from
	 * anyone else, or with a missing, malformed or late header, is closed
	 * and reported (TK_SERVER_REJECT, stats pp_refused), never handed to
	 * the service.  After a PROXY header for TCP4 or TCP6, tk_conn_peer()
	 * is the client's and tk_conn_via() the balancer's; a LOCAL or
	 * UNKNOWN one (a health check) keeps the connection's own address.
	 * max_conns counts from the accept.
	 */
	bool proxy_protocol;
	const struct tk_acl *proxy_from;
};

void tk_server_opts_init(struct tk_server_opts *opts);

/* Totals over every worker (each counts its own; summed when read). */
struct tk_server_stats {
	uint64_t accepted;
	uint64_t rejected; /* over max_conns */
	uint64_t denied;   /* by the access list */
	uint64_t active;
	uint64_t closed;
	uint64_t bytes_in; /* open connections included */
	uint64_t bytes_out;
	uint64_t accept_errors;
	uint64_t conn_errors; /* connections that ended with an error: */
	uint64_t resets;      /* ECONNRESET, EPIPE */
	uint64_t timeouts;    /* idle or line timeout */
	uint64_t line_errors; /* line too long */
	uint64_t workers;     /* how many */
	uint64_t pp_refused;  /* PROXY protocol: untrusted, bad or no header */
	/* TLS handshakes that failed or timed out. */
	uint64_t tls_failures;
};

/*
 * A new server in *out: 0, or -EINVAL, -ENOMEM (or an error creating a
 * worker's loop) with *out NULL.
 */
int tk_server_new(struct tk_loop *loop, const struct tk_server_opts *opts,
		  const struct tk_service *svc, void *svc_arg,
		  struct tk_server **out);
/*
 * Bind and listen on addr (SO_REUSEADDR; SO_REUSEPORT and one socket per
 * worker when workers > 1; IPv6 wildcard dual-stack unless v6only).  Port 0
 * picks a free port, the same for every worker; tk_server_addr() tells
 * which.  Returns 0 or -errno (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL...).
 */
int tk_server_listen(struct tk_server *s, const struct tk_addr *addr,
		     bool v6only);
/*
 * Listen on every address of hosts[0..n-1] (IP literals, "[v6]" or names,
 * all the addresses a name has), duplicates once.  With n == 0: loopback,
 * 127.0.0.1 and ::1, the latter skipped if the system has no IPv6.  An
 * IPv6 wildcard is dual-stack unless 0.0.0.0 is among the addresses too.
 * Port 0 picks one free port for every address (retried a few times if it
 * is taken on another).  On failure nothing stays listening from this
 * call, and *why (optional) says where: TK_EBADADDR, TK_ENOHOST and other
 * resolver errors (why->host), a tk_server_listen() error (why->addr), or
 * -EAGAIN when no port was free on every address.
 */
#define TK_LISTEN_NUMERIC 0x1 /* IP literals only: no name is looked up */

struct tk_listen_why {
	const char *host;	/* the host at fault, or NULL */
	struct tk_addr addr;	/* the address at fault (port included) */
	struct tk_addr skipped; /* n == 0: ::1 skipped for want of IPv6... */
	int skipped_err;	/* ...and why; 0 when nothing was */
};

int tk_server_listen_hosts(struct tk_server *s, const char *const *hosts,
			   size_t n, uint16_t port, unsigned flags,
			   struct tk_listen_why *why);
/* Number of addresses listened on, and the bound address of the i-th. */
size_t tk_server_listener_count(const struct tk_server *s);
const struct tk_addr *tk_server_addr(const struct tk_server *s, size_t i);
/* Start accepting (and the worker threads).  0 or -errno. */
int tk_server_start(struct tk_server *s);
/*
 * Graceful stop: close the listeners at once and ask every connection to
 * finish (the service's stop callback, or tk_conn_end(): pending output
 * is written, then FIN).  Returns at once; TK_SERVER_DRAINED tells when
 * the last is gone; tk_server_stop() closes whatever is left at a deadline.
 * Call from the owner's thread.
 */
void tk_server_drain(struct tk_server *s);
/*
 * Stop accepting, close every connection (close callbacks run with
 * -ECANCELED) and join the worker threads.  Call from the owner's thread.
 */
void tk_server_stop(struct tk_server *s);
/*
 * Ask the server's owner to stop: sets a flag read by tk_server_stopping()
 * and stops the owner's loop (the one given to tk_server_new()) from that
 * loop's own thread.  Safe from any worker's service callback, and
 * idempotent: only the first request counts, and none after
 * tk_server_drain() has begun stops the loop again, so a drain runs to its
 * own end however many requests race.
 */
void tk_server_request_stop(struct tk_server *s);
bool tk_server_stopping(const struct tk_server *s);
void tk_server_get_stats(const struct tk_server *s,
			 struct tk_server_stats *out);
/* The owner's loop (the one given to tk_server_new()). */
struct tk_loop *tk_server_loop(const struct tk_server *s);
const struct tk_server_opts *tk_server_get_opts(const struct tk_server *s);
/* Which worker a connection lives on (0 .. workers-1). */
unsigned tk_conn_worker(const struct tk_conn *c);
/* Stops (if needed) and frees. */
void tk_server_free(struct tk_server *s);

/*
 * Built-in services, written against this header only.
 *
 * echo:    every byte back, byte-transparent; FIN after the peer's FIN.
 * discard: reads and drops everything.
 * welcome: tutorial 1: "Welcome to the server. Type something and hit
 *          enter\n", then "OK..." followed by every chunk received.
 * basic:   tutorial 2: "You connected at [TIMESTAMP]\n", one message of up
 *          to 4096 bytes, "You sent: [MESSAGE]\n", then close; the message
 *          "shutdown" (trimmed, any case) stops the server when allowed.
 * line:    a line server: every complete line back as it came (LF or
 *          CRLF), under the server's max_line and line_timeout; a line too
 *          long gets "error: line too long\n" and the connection ends.
 * broker and chat (tcpkit/broker.h): every client to every other; their
 *          argument is a struct tk_broker.
 */
extern const struct tk_service tk_service_echo;
extern const struct tk_service tk_service_discard;
extern const struct tk_service tk_service_welcome;
extern const struct tk_service tk_service_basic;
extern const struct tk_service tk_service_line;

#define TK_WELCOME_GREETING                                                    \
	"Welcome to the server. Type something and hit enter\n"
#define TK_BASIC_MAX_MESSAGE 4096

/* Argument of tk_service_basic (may be NULL: defaults, all false). */
struct tk_basic_opts {
	/* Honour "shutdown" from any peer, not only loopback ones. */
	bool allow_remote_shutdown;
};

/* Find a built-in service by name, or NULL. */
const struct tk_service *tk_service_find(const char *name);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

/* The API by topic; each header keeps its own symbols visible. */
#include "tcpkit/acl.h"
#include "tcpkit/broker.h"
#include "tcpkit/endpoint.h"
#include "tcpkit/exec.h"
#include "tcpkit/handoff.h"
#include "tcpkit/hist.h"
#include "tcpkit/listenfd.h"
#include "tcpkit/metrics.h"
#include "tcpkit/proxy.h"
#include "tcpkit/proxyproto.h"
#include "tcpkit/relay.h"
#include "tcpkit/reload.h"
#include "tcpkit/scan.h"
#include "tcpkit/socks5.h"
#include "tcpkit/systemd.h"
#include "tcpkit/telnet.h"
#include "tcpkit/udp.h"
#include "tcpkit/unix.h"

#endif /* TCPKIT_H */
