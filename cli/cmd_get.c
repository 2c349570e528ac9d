/* cmd_get.c: `tcpkit get`: an HTTP/1.1 GET of an http:// or https:// URL,
 * body to stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "tlsopt.h"

/* A response head past this is not a web server talking to us. */
#define HEAD_MAX (64u * 1024)
/* The longest URL a redirect may lead to. */
#define URL_MAX (16u * 1024)
/* -L: redirects followed at most, unless --max-redirs says otherwise. */
#define MAX_REDIRS_DEFAULT 10

/* RFC 3986 section 3.1, after the first letter. */
#define SCHEME_CHARS                                                           \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."

/* One exchange per connection: Connection: close, and no half-close. */
#define REQUEST_FMT                                                            \
	"GET %s%.*s HTTP/1.1\r\n"                                              \
	"Host: %s\r\n"                                                         \
	"User-Agent: tcpkit/%s\r\n"                                            \
	"Accept: */*\r\n"                                                      \
	"Connection: close\r\n"                                                \
	"\r\n"

const char cmd_get_help[] =
	"usage: tcpkit get [OPTIONS] URL\n"
	"\n"
	"Fetch URL with one HTTP/1.1 GET and write the response body to\n"
	"stdout, byte for byte, as it arrives.  This is tutorial 1's client\n"
	"(\"GET / HTTP/1.1\" to port 80, print the reply) done the way a real\n"
	"client does it: a Host header, the body framed by Content-Length,\n"
	"chunked transfer coding (decoded) or the end of the connection, and\n"
	"a clear error when any of it goes wrong.\n"
	"\n"
	"URL is http[s]://HOST[:PORT][/PATH][?QUERY]; HOST is a name, an\n"
	"IPv4 address or an IPv6 address in brackets (http://[::1]:8080/).\n"
	"The port defaults to 80 (443 for https); a #fragment is not sent.\n"
	"https:// verifies the server's certificate against the system's\n"
	"trust store and checks HOST against it (see docs/tls.md).\n"
	"\n"
	"The request sent is:\n"
	"  GET PATH HTTP/1.1\n"
	"  Host: HOST[:PORT]\n"
	"  User-Agent: tcpkit/VERSION\n"
	"  Accept: */*\n"
	"  Connection: close\n"
	"\n"
	"Options:\n"
	"  -i, --include       write the status line and headers, as\n"
	"                      received, before the body\n"
	"  -f, --fail          on a status of 400 or more, print nothing on\n"
	"                      stdout, report the status and exit 1\n"
	"  -v, --verbose       on stderr: the address connected to, the\n"
	"                      request line, every status line received and\n"
	"                      each redirect followed\n"
	"  -L, --location      follow redirects (301, 302, 303, 307, 308 with\n"
	"                      a Location; relative ones are resolved against\n"
	"                      the current URL); each hop is a new GET.\n"
	"                      Without -L a redirect is shown as any response\n"
	"                      and stderr says where it points:\n"
	"                      'tcpkit: get URL: 301 -> LOCATION (use -L)'\n"
	"      --max-redirs N  follow at most N redirects (default 10); one\n"
	"                      more is an error (exit 76)\n"
	"      --allow-https-downgrade\n"
	"                      let -L go from https:// to http://, which is\n"
	"                      refused otherwise (exit 76): the rest of the\n"
	"                      way would be readable by anyone on the path\n"
	"  -w, --connect-timeout DURATION\n"
	"                      give up connecting after this long, all\n"
	"                      addresses together (default 10s); e.g. 5,\n"
	"                      1.5s, 500ms\n"
	"  -t, --timeout DURATION\n"
	"                      give up when no data arrives for this long\n"
	"                      (default 30s); 0 = wait forever.  Also\n"
	"                      --idle-timeout, its name in connect and send\n"
	"                      (where the letter is -i: here -i is --include)\n"
	"  -m, --max-time DURATION\n"
	"                      give up when the whole exchange (connect,\n"
	"                      TLS, response, body, every redirect) takes\n"
	"                      longer than this\n"
	"                      (default: no limit): a server that trickles,\n"
	"                      or sends 1xx heads or trailers without end,\n"
	"                      is cut off\n"
	"  -4, --ipv4          IPv4 addresses only\n"
	"  -6, --ipv6          IPv6 addresses only\n"
	"  -h, --help          show this help\n"
	"\n"
	"TLS (https://, or http:// with -L for the https:// hops):\n"
	"      --cacert FILE   trust these CAs (PEM) instead of the system's\n"
	"      --capath DIR    trust the CAs in DIR (c_rehash layout)\n"
	"      --servername NAME\n"
	"                      check the certificate for NAME and send it as\n"
	"                      SNI (default: HOST; not sent for IP addresses;\n"
	"                      with -L, only for hops to URL's HOST)\n"
	"      --pin sha256:HEX\n"
	"                      accept exactly this certificate or public key\n"
	"      --insecure      check nothing (warns; anyone on the path can\n"
	"                      read and change the exchange)\n"
	"      --cert FILE, --key FILE\n"
	"                      a client certificate and its key\n"
	"      --tls-min 1.2|1.3\n"
	"                      oldest version accepted (default 1.2)\n"
	"      --alpn LIST     protocols to offer, e.g. http/1.1\n"
	"  -v also prints the TLS version, cipher, ALPN and the server's\n"
	"  certificate (subject, issuer, validity, SHA-256); SSLKEYLOGFILE is\n"
	"  honoured.\n"
	"\n"
	"Interim responses (100 Continue and the like) are skipped; with -i\n"
	"their heads are written too.  Text from the server shown on a\n"
	"terminal (-v lines, the reason in errors, -i heads when stdout is a\n"
	"terminal) has control characters (C0, DEL, C1) and bytes that are\n"
	"not UTF-8 written as \\xNN; the body is never changed, nor is the\n"
	"-i head in a file or a pipe.  A status of 400 or more is not an\n"
	"error unless -f is given: the body is written and the exit code\n"
	"is 0.\n"
	"\n"
	"Exit codes:\n"
	"  0   the whole body was received (or stdout's reader left early)\n"
	"  1   -f and a status of 400 or more; stdout not writable\n"
	"  64  usage: bad option, malformed URL, unsupported scheme\n"
	"  66  a --cacert, --cert or --key file is missing\n"
	"  68  host not found\n"
	"  69  connection refused, host or network unreachable, reset\n"
	"  75  connect timeout (-w), no data for too long (-t), the whole\n"
	"      exchange over --max-time, TLS handshake timeout\n"
	"  76  malformed HTTP response (including both Content-Length and\n"
	"      Transfer-Encoding), response head over 64 KiB, the\n"
	"      connection closed before the end of the body, an https\n"
	"      body delimited by the close ended without TLS close_notify;\n"
	"      -L: too many redirects, a redirect to a malformed URL, to\n"
	"      another scheme, or from https to http\n"
	"\n"
	"Examples:\n"
	"  tcpkit get http://example.com/               the home page\n"
	"  tcpkit get -i http://127.0.0.1:8080/         with the headers\n"
	"  tcpkit get -f http://[::1]:8080/x > x.bin    save, fail on 404\n"
	"  tcpkit get -v -w 2s -t 5s http://host/path   verbose, short waits\n"
	"  tcpkit get -L -m 30s http://example.com/      follow redirects,\n"
	"                                                30s in all\n";

struct get_opts {
	const char *url;
	bool include;
	bool tty_out; /* stdout is a terminal: -i heads are escaped */
	bool fail;
	bool verbose;
	int family;
	uint64_t connect_ms;
	uint64_t idle_ms;
	uint64_t max_ms; /* --max-time: the whole exchange; 0 = none */
	bool location;	 /* -L: follow redirects */
	bool downgrade;	 /* --allow-https-downgrade */
	uint64_t max_redirs;
	struct tlsopt tls;
	struct tk_tls_ctx *ctx;
};

/* What the URL asks for, ready to use. */
struct get_target {
	char host[TK_HOSTLEN]; /* for the resolver: no brackets */
	char port[TK_PORTLEN];
	bool ipv6;
	bool https;
	char *request; /* the whole request, owned */
	size_t reqlen;
};

enum get_phase {
	PH_HEAD, /* reading a status line and headers */
	PH_BODY, /* reading the body of the final response */
	PH_DONE, /* the body is complete */
};

struct get_state {
	const struct get_opts *o;
	const struct get_target *t;
	const char *url; /* this exchange's: the errors name it */
	char *next;	 /* -L: where the redirect leads (owned) */
	struct tk_loop *loop;
	struct tk_conn *conn;
	struct tk_timer *idle;
	struct tk_timer *deadline; /* --max-time */
	uint64_t last_data;	   /* loop time of the last data handled */
	bool opened;		   /* connected (and TLS handshake done) */
	uint64_t ninterim;	   /* 1xx heads received */
	enum get_phase phase;
	struct tk_buf head;
	enum tk_http_body kind;
	uint64_t length; /* Content-Length */
	uint64_t got;	 /* body bytes received */
	struct tk_chunked chunked;
	int rc;	       /* the exit code */
	bool reported; /* the error line is printed */
};

/* Long options only; above TLSOPT_ALPN, whose range the TLS ones use. */
enum {
	OPT_MAX_REDIRS = TLSOPT_ALPN + 1,
	OPT_DOWNGRADE,
};

static int
parse_args(int argc, char **argv, struct get_opts *o)
{
	static const struct option longopts[] = {
		{ "include", no_argument, NULL, 'i' },
		{ "fail", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "connect-timeout", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		/* The name connect, send and serve use for the same limit. */
		{ "idle-timeout", required_argument, NULL, 't' },
		{ "ipv4", no_argument, NULL, '4' },
		{ "ipv6", no_argument, NULL, '6' },
		{ "max-time", required_argument, NULL, 'm' },
		{ "location", no_argument, NULL, 'L' },
		{ "max-redirs", required_argument, NULL, OPT_MAX_REDIRS },
		{ "allow-https-downgrade", no_argument, NULL, OPT_DOWNGRADE },
		{ "help", no_argument, NULL, 'h' },
		TLSOPT_CLIENT_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	bool v4 = false, v6 = false;
	int ch, rc;

	memset(o, 0, sizeof(*o));
	o->tty_out = isatty(STDOUT_FILENO);
	o->connect_ms = TK_DEFAULT_CONNECT_TIMEOUT_MS;
	o->idle_ms = 30000;
	o->max_redirs = MAX_REDIRS_DEFAULT;
	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":ifvw:t:m:L46h", longopts)) !=
	       -1) {
		switch (ch) {
		case 'i':
			o->include = true;
			break;
		case 'f':
			o->fail = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'w':
			if (cli_parse_duration("get", "-w/--connect-timeout",
					       optarg, false,
					       &o->connect_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 't':
			if (cli_parse_duration("get", "-t/--timeout", optarg,
					       true, &o->idle_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'm':
			if (cli_parse_duration("get", "-m/--max-time", optarg,
					       true, &o->max_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'L':
			o->location = true;
			break;
		case OPT_MAX_REDIRS:
			if (cli_parse_uint("get", "--max-redirs", optarg, 0,
					   1000, &o->max_redirs) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_DOWNGRADE:
			o->downgrade = true;
			break;
		case '4':
			v4 = true;
			break;
		case '6':
			v6 = true;
			break;
		case 'h':
			cli_help("get");
			return -1;
		case TLSOPT_TLS:
			return cli_usage("get", "use an https:// URL for TLS");
		default:
			if (ch > TLSOPT_TLS && ch <= TLSOPT_ALPN) {
				rc = tlsopt_take("get", &o->tls, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			return cli_bad_option("get", argv, ch);
		}
	}
	if (v4 && v6)
		return cli_usage("get", "-4 and -6 exclude each other");
	o->family = v4 ? AF_INET : v6 ? AF_INET6 : AF_UNSPEC;
	if (optind == argc)
		return cli_usage("get", "no URL given");
	o->url = argv[optind++];
	if (optind < argc)
		return cli_usage("get", "unexpected argument '%s'",
				 argv[optind]);
	return 0;
}

/*
 * Why tk_url_parse() refused url, as precisely as cheap checks can tell;
 * the parser itself only says "malformed".  Written into why.
 */
static void
url_problem(const char *url, char *why, size_t len)
{
	const char *auth = strstr(url, "://"), *end, *p;
	size_t n;

	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			snprintf(
				why, len,
				"malformed URL: spaces, controls and non-ASCII "
				"must be percent-encoded");
			return;
		}
	}
	if (auth == NULL || auth == url ||
	    strspn(url, SCHEME_CHARS) != (size_t)(auth - url)) {
		snprintf(why, len,
			 "malformed URL: no scheme (expected "
			 "http://HOST[:PORT][/PATH])");
		return;
	}
	auth += 3;
	n = strcspn(auth, "/?#");
	end = auth + n;
	if (memchr(auth, '@', n) != NULL) {
		snprintf(why, len,
			 "malformed URL: user:password@ is not supported");
		return;
	}
	if (n == 0 || *auth == ':') {
		snprintf(why, len, "malformed URL: no host");
		return;
	}
	p = memchr(auth, ']', n);
	if (*auth == '[' && p == NULL) {
		snprintf(why, len, "malformed URL: '[' without ']'");
		return;
	}
	if (*auth == '[' && p + 1 < end && p[1] != ':') {
		snprintf(why, len, "malformed URL: junk after ']'");
		return;
	}
	if (*auth == '[') {
		snprintf(why, len, "malformed URL: bad IPv6 address '%.*s'",
			 (int)(p - auth - 1), auth + 1);
		return;
	}
	p = memchr(auth, ':', n);
	if (p != NULL && end - p > 1 &&
	    strspn(p + 1, "0123456789") == (size_t)(end - p - 1)) {
		snprintf(why, len,
			 "malformed URL: port %.*s is out of range (1-65535)",
			 (int)(end - p - 1), p + 1);
		return;
	}
	if (p != NULL) {
		snprintf(why, len, "malformed URL: bad port '%.*s'",
			 (int)(end - p - 1), p + 1);
		return;
	}
	snprintf(why, len, "malformed URL: bad host '%.*s'", (int)n, auth);
}

/*
 * Check the URL and build the request.  Returns 0, or prints the error and
 * returns the exit code.
 */
static int
make_target(const char *url, struct get_target *t)
{
	struct tk_url u;
	char hosthdr[TK_HOSTLEN + TK_PORTLEN + 3], why[256];
	const char *target;
	uint16_t port = 80;
	size_t n;
	int len;

	memset(t, 0, sizeof(*t));
	/* The scheme first: "ftp://..." is unsupported even if well formed. */
	n = strspn(url, SCHEME_CHARS);
	if (n > 0 && strncmp(url + n, "://", 3) == 0) {
		if (n == 5 && strncasecmp(url, "https", 5) == 0) {
			t->https = true;
			port = 443;
		} else if (n != 4 || strncasecmp(url, "http", 4) != 0) {
			cli_error("get", url,
				  "unsupported scheme '%.*s' (http or https)",
				  (int)n, url);
			return CLI_EXIT_USAGE;
		}
	}
	if (tk_url_parse(url, strlen(url), &u) < 0) {
		url_problem(url, why, sizeof(why));
		cli_error("get", url, "%s", why);
		return CLI_EXIT_USAGE;
	}
	memcpy(t->host, url + u.host.off, u.host.len);
	t->host[u.host.len] = '\0';
	t->ipv6 = u.host_is_ipv6;
	if (u.port.len > 0) {
		char text[TK_PORTLEN];

		snprintf(text, sizeof(text), "%.*s", (int)u.port.len,
			 url + u.port.off);
		if (tk_port_parse(text, &port) < 0 || port == 0) {
			cli_error("get", url, "malformed URL: bad port '%s'",
				  text);
			return CLI_EXIT_USAGE;
		}
	}
	snprintf(t->port, sizeof(t->port), "%u", port);

	/* RFC 9112 section 3.2: the port only when it is not the default. */
	len = snprintf(hosthdr, sizeof(hosthdr), t->ipv6 ? "[%s]" : "%s",
		       t->host);
	if (port != (t->https ? 443 : 80))
		snprintf(hosthdr + len, sizeof(hosthdr) - (size_t)len, ":%u",
			 port);

	/* An empty path is "/", and "?q" alone is "/?q" (RFC 9112 3.2.1). */
	target = url + u.target.off;
	n = u.target.len;
	/* argv strings are far below INT_MAX (MAX_ARG_STRLEN): %.*s is safe. */
	len = snprintf(NULL, 0, REQUEST_FMT,
		       n == 0 || target[0] == '?' ? "/" : "", (int)n, target,
		       hosthdr, tk_version());
	t->request = malloc((size_t)len + 1);
	if (t->request == NULL)
		return cli_fail("get", url, -ENOMEM);
	snprintf(t->request, (size_t)len + 1, REQUEST_FMT,
		 n == 0 || target[0] == '?' ? "/" : "", (int)n, target, hosthdr,
		 tk_version());
	t->reqlen = (size_t)len;
	return 0;
}

/*
 * Report an error of the exchange once, remember its exit code and close
 * the connection (the close callback then stops the loop).
 */
static void fail(struct get_state *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct get_state *st, int rc, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	if (!st->reported) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
		cli_error("get", st->url, "%s", why);
		st->reported = true;
		st->rc = rc;
	}
	if (st->conn != NULL)
		tk_conn_close(st->conn, TK_EPROTO);
}

/* The body is complete: close (err 0) and let the loop stop. */
static void
finish(struct get_state *st)
{
	st->phase = PH_DONE;
	if (st->conn != NULL)
		tk_conn_close(st->conn, 0);
}

/*
 * Write to stdout as the bytes come: memory stays bounded whatever the
 * body's size.  false if the exchange is over: stdout failed, or whoever
 * read it went away (a pipe into head), which ends quietly with 0 as for
 * `tcpkit connect`.
 */
static bool
emit(struct get_state *st, const char *p, size_t n)
{
	int err = cli_write_all(1, p, n);

	if (err == -EPIPE) {
		st->reported = true;
		if (st->conn != NULL)
			tk_conn_close(st->conn, 0);
		return false;
	}
	if (err < 0) {
		fail(st, CLI_EXIT_OTHER, "cannot write to stdout: %s",
		     tk_strerror(err));
		return false;
	}
	return true;
}

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629) at p, or 0: overlong
 * forms, surrogates and cut sequences are not text.
 */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/*
 * Bytes from the network made safe for a terminal: a server must not be
 * able to move the cursor, retitle the window or worse through our error
 * lines.  C0 and C1 controls, DEL and bytes that are not UTF-8 become
 * \xNN; other UTF-8 is kept.  keep_eol keeps CR and LF (a whole head).
 * Returns a malloc'd string (*outlen bytes and a NUL), or NULL.
 */
static char *
escape_text(const char *s, size_t n, bool keep_eol, size_t *outlen)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char *out = malloc(4 * n + 1), *o = out;
	size_t i = 0, len, j;
	bool plain;

	if (out == NULL)
		return NULL;
	while (i < n) {
		len = utf8_len(u + i, n - i);
		if (len == 1)
			plain = (u[i] >= 0x20 && u[i] != 0x7f) ||
				(keep_eol && (u[i] == '\r' || u[i] == '\n'));
		else /* U+0080..U+009F are the C1 controls. */
			plain = len > 1 && !(u[i] == 0xc2 && u[i + 1] < 0xa0);
		if (len == 0)
			len = 1;
		for (j = 0; j < len; j++, i++) {
			if (plain) {
				*o++ = (char)u[i];
				continue;
			}
			*o++ = '\\';
			*o++ = 'x';
			*o++ = digits[u[i] >> 4];
			*o++ = digits[u[i] & 15];
		}
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

/* One line of network text on stderr, escaped (see escape_text()). */
static void
print_escaped(const char *prefix, const char *s, size_t n)
{
	size_t len;
	char *e = escape_text(s, n, false, &len);

	fprintf(stderr, "%s%s\n", prefix, e != NULL ? e : "(out of memory)");
	free(e);
}

/* The first line of a head, for -v. */
static void
print_status_line(const char *head, size_t len)
{
	size_t n = 0;

	while (n < len && head[n] != '\r' && head[n] != '\n')
		n++;
	print_escaped("< ", head, n);
}

/*
 * -i: a head as received, byte for byte into a file or a pipe; on a
 * terminal, escaped as the -v lines are.
 */
static bool
emit_head(struct get_state *st, const char *h, size_t hlen)
{
	size_t len;
	char *e;
	bool ok;

	if (!st->o->tty_out)
		return emit(st, h, hlen);
	e = escape_text(h, hlen, true, &len);
	if (e == NULL) {
		fail(st, CLI_EXIT_OTHER, "%s", tk_strerror(-ENOMEM));
		return false;
	}
	ok = emit(st, e, len);
	free(e);
	return ok;
}

static void
body_data(struct get_state *st, const char *p, size_t n)
{
	size_t used, off, dlen;
	int rc;

	switch (st->kind) {
	case TK_HTTP_BODY_LENGTH:
		/* Bytes past Content-Length are not ours: drop them. */
		if (n > st->length - st->got)
			n = (size_t)(st->length - st->got);
		if (!emit(st, p, n))
			return;
		st->got += n;
		if (st->got == st->length)
			finish(st);
		return;
	case TK_HTTP_BODY_CHUNKED:
		for (;;) {
			rc = tk_chunked_decode(&st->chunked, p, n, &used, &off,
					       &dlen);
			if (rc < 0) {
				fail(st, CLI_EXIT_PROTOCOL,
				     "malformed HTTP response: bad chunked "
				     "encoding");
				return;
			}
			if (rc == TK_CHUNK_DATA) {
				if (!emit(st, p + off, dlen))
					return;
				st->got += dlen;
			}
			p += used;
			n -= used;
			if (rc == TK_CHUNK_DONE) {
				finish(st);
				return;
			}
			if (rc == TK_CHUNK_MORE)
				return;
		}
		return;
	case TK_HTTP_BODY_CLOSE:
		if (emit(st, p, n))
			st->got += n;
		return;
	case TK_HTTP_BODY_NONE:
		finish(st);
		return;
	}
}

/* The statuses -L follows (RFC 9110 section 15.4); 300 and 305 it leaves. */
static bool
is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

/*
 * A final response r: if it is a redirect with a Location, -L takes
 * st->next from it and ends this exchange (true); without -L the user is
 * told where it points and the response is shown as any other (false).
 * Only GET is ever sent, so a 303's "use GET" needs nothing more.
 */
static bool
redirect(struct get_state *st, const struct tk_http_response *r, const char *h,
	 size_t hlen)
{
	const char *loc;
	char *raw, *target, *shown;
	size_t llen, slen;
	ssize_t n;

	loc = tk_http_header_find(h, r, "location", &llen);
	if (!is_redirect(r->status) || loc == NULL || llen == 0)
		return false;
	raw = malloc(llen + 1);
	target = malloc(URL_MAX);
	if (raw == NULL || target == NULL) {
		free(raw);
		free(target);
		fail(st, CLI_EXIT_OTHER, "%s", tk_strerror(-ENOMEM));
		return true;
	}
	memcpy(raw, loc, llen);
	raw[llen] = '\0';
	n = tk_url_resolve(st->url, raw, target, URL_MAX);
	/* Text from the server: escaped before it reaches the terminal. */
	shown = n >= 0 ? escape_text(target, (size_t)n, false, &slen)
		       : escape_text(raw, llen, false, &slen);
	if (!st->o->location) {
		cli_error("get", st->url, "%d -> %s (use -L)", r->status,
			  shown != NULL ? shown : "?");
	} else if (n < 0) {
		fail(st, CLI_EXIT_PROTOCOL,
		     "%d redirect to a malformed Location '%s'", r->status,
		     shown != NULL ? shown : "");
	} else if (!st->o->include || emit_head(st, h, hlen)) {
		if (st->o->verbose)
			fprintf(stderr, "redirected (%d) to %s\n", r->status,
				shown != NULL ? shown : "");
		st->next = target;
		target = NULL;
		finish(st);
	}
	free(shown);
	free(raw);
	free(target);
	return st->o->location;
}

/*
 * A complete head of hlen bytes is at the front of st->head.  Interim
 * responses are skipped; the final one sets up the body, whose first bytes
 * may already be in st->head after the head.
 */
static void
head_done(struct get_state *st, const struct tk_http_response *r, size_t hlen)
{
	const char *h = tk_buf_peek(&st->head);
	size_t nrest = tk_buf_len(&st->head) - hlen;

	if (st->o->verbose)
		print_status_line(h, hlen);
	if (r->status == 101) {
		/* We asked for no upgrade: what follows is not HTTP. */
		fail(st, CLI_EXIT_PROTOCOL,
		     "malformed HTTP response: 101 Switching Protocols "
		     "without an Upgrade request");
		return;
	}
	if (r->status < 200) {
		st->ninterim++;
		if (st->o->include && !emit_head(st, h, hlen))
			return;
		tk_buf_consume(&st->head, hlen);
		return;
	}
	if (st->o->fail && r->status >= 400) {
		size_t len;
		char *reason = escape_text(h + r->reason.off, r->reason.len,
					   false, &len);

		fail(st, CLI_EXIT_OTHER, "server answered %d%s%s", r->status,
		     r->reason.len > 0 ? " " : "",
		     reason != NULL ? reason : "");
		free(reason);
		return;
	}
	if (tk_http_body_framing(h, r, false, &st->kind, &st->length) < 0) {
		if (tk_http_header_find(h, r, "content-length", NULL) != NULL &&
		    tk_http_header_find(h, r, "transfer-encoding", NULL) !=
			    NULL)
			fail(st, CLI_EXIT_PROTOCOL,
			     "malformed HTTP response: both Content-Length "
			     "and Transfer-Encoding (RFC 9112 section 6.3)");
		else
			fail(st, CLI_EXIT_PROTOCOL,
			     "malformed HTTP response: bad Content-Length or "
			     "Transfer-Encoding");
		return;
	}
	if (redirect(st, r, h, hlen))
		return;
	if (st->o->include && !emit_head(st, h, hlen))
		return;
	st->phase = PH_BODY;
	tk_chunked_init(&st->chunked);
	if (st->kind == TK_HTTP_BODY_NONE ||
	    (st->kind == TK_HTTP_BODY_LENGTH && st->length == 0))
		finish(st);
	else if (nrest > 0)
		body_data(st, h + hlen, nrest);
	/* The head is not needed any more: its 64 KiB go back. */
	tk_buf_free(&st->head);
}

static void
head_data(struct get_state *st, const char *p, size_t n)
{
	struct tk_http_header hdrs[TK_HTTP_MAX_HEADERS];
	struct tk_http_response r = { .headers = hdrs,
				      .max_headers = TK_HTTP_MAX_HEADERS };
	ssize_t hlen;
	size_t take;
	int err;

	while (st->phase == PH_HEAD && !st->reported) {
		take = n < tk_buf_room(&st->head) ? n : tk_buf_room(&st->head);
		if (take > 0 && (err = tk_buf_append(&st->head, p, take)) < 0) {
			fail(st, CLI_EXIT_OTHER, "%s", tk_strerror(err));
			return;
		}
		p += take;
		n -= take;
		hlen = tk_http_parse_response(tk_buf_peek(&st->head),
					      tk_buf_len(&st->head), 0, &r);
		if (hlen == TK_ETOOBIG) {
			fail(st, CLI_EXIT_PROTOCOL,
			     "malformed HTTP response: more than %d header "
			     "fields",
			     TK_HTTP_MAX_HEADERS);
			return;
		}
		if (hlen < 0) {
			fail(st, CLI_EXIT_PROTOCOL, "%s",
			     tk_strerror(TK_EHTTP));
			return;
		}
		if (hlen == 0) {
			/* Input left over means the buffer is full. */
			if (tk_buf_room(&st->head) == 0)
				fail(st, CLI_EXIT_PROTOCOL,
				     "malformed HTTP response: head larger "
				     "than %u KiB",
				     HEAD_MAX / 1024);
			return;
		}
		/* After an interim response, go round: the next head may be
		 * buffered already. */
		head_done(st, &r, (size_t)hlen);
	}
	if (n > 0 && st->phase == PH_BODY && !st->reported)
		body_data(st, p, n);
}

/* The server closed its side: complete only for a close-delimited body. */
static void
peer_closed(struct get_state *st)
{
	if (st->phase == PH_HEAD) {
		if (tk_buf_len(&st->head) == 0)
			fail(st, CLI_EXIT_PROTOCOL,
			     "connection closed without a response");
		else
			fail(st, CLI_EXIT_PROTOCOL,
			     "connection closed inside the response head");
		return;
	}
	switch (st->kind) {
	case TK_HTTP_BODY_LENGTH:
		fail(st, CLI_EXIT_PROTOCOL,
		     "connection closed after %llu of %llu body bytes",
		     (unsigned long long)st->got,
		     (unsigned long long)st->length);
		return;
	case TK_HTTP_BODY_CHUNKED:
		fail(st, CLI_EXIT_PROTOCOL,
		     "connection closed inside a chunked body");
		return;
	default:
		/*
		 * Over TLS only close_notify proves the close is the
		 * server's: a bare FIN may be an attacker cutting the body.
		 */
		if (st->conn != NULL && tk_conn_tls_truncated(st->conn)) {
			fail(st, CLI_EXIT_PROTOCOL,
			     "truncated: no TLS close_notify after %llu body "
			     "bytes",
			     (unsigned long long)st->got);
			return;
		}
		finish(st);
	}
}

static int
get_open(struct tk_conn *c, void *arg)
{
	struct get_state *st = arg;
	const char *req = st->t->request;
	char where[TK_ADDRSTRLEN];
	int err;

	st->conn = c;
	st->opened = true;
	if (st->o->verbose) {
		fprintf(stderr, "connected to %s\n",
			tk_addr_format(tk_conn_peer(c), where, sizeof(where)));
		if (tk_conn_is_tls(c))
			tlsopt_print_info(c);
		fprintf(stderr, "> %.*s\n", (int)strcspn(req, "\r"), req);
	}
	err = tk_conn_write(c, req, st->t->reqlen);
	if (err < 0)
		return err;
	st->last_data = tk_loop_now(st->loop);
	if (st->idle != NULL)
		tk_timer_start(st->idle, st->o->idle_ms, 0);
	return 0;
}

static void
get_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct get_state *st = arg;

	(void)c;
	if (st->phase == PH_DONE || st->reported)
		return;
	if (n == TK_EOF)
		peer_closed(st);
	else if (st->phase == PH_HEAD)
		head_data(st, data, (size_t)n);
	else
		body_data(st, data, (size_t)n);
	/* Writing to stdout may have blocked: the wait starts afresh now. */
	tk_loop_update_time(st->loop);
	st->last_data = tk_loop_now(st->loop);
}

static void
get_close(struct tk_conn *c, int err, void *arg)
{
	struct get_state *st = arg;
	char dur[32], why[512];

	st->conn = NULL;
	if (st->idle != NULL)
		tk_timer_stop(st->idle);
	if (st->deadline != NULL)
		tk_timer_stop(st->deadline);
	tk_loop_stop(st->loop);
	if (st->reported || st->phase == PH_DONE)
		return;
	st->reported = true;
	if (err == TK_ECONNTIMEDOUT) {
		cli_error("get", st->url, "connect timed out after %s",
			  cli_format_duration(st->o->connect_ms, dur,
					      sizeof(dur)));
		st->rc = CLI_EXIT_TIMEOUT;
	} else if (err == 0) {
		/* Not expected: every orderly end goes through get_data(). */
		cli_error("get", st->url, "connection closed");
		st->rc = CLI_EXIT_PROTOCOL;
	} else {
		cli_error("get", st->url, "%s",
			  tlsopt_why(c, err, why, sizeof(why)));
		st->rc = cli_exit_code(err);
	}
	if (st->o->verbose && tk_conn_last_error(c)[0] != '\0')
		fprintf(stderr, "last attempt: %s\n", tk_conn_last_error(c));
}

/* -t: no data for idle_ms.  Re-armed rather than restarted per read. */
static void
on_idle(struct tk_timer *t, void *arg)
{
	struct get_state *st = arg;
	uint64_t spent = tk_loop_now(st->loop) - st->last_data;
	char dur[32];

	if (st->conn == NULL)
		return;
	if (spent < st->o->idle_ms) {
		tk_timer_start(t, st->o->idle_ms - spent, 0);
		return;
	}
	fail(st, CLI_EXIT_TIMEOUT, "idle timeout (no data for %s)",
	     cli_format_duration(st->o->idle_ms, dur, sizeof(dur)));
}

/*
 * --max-time: the whole exchange is over.  Say what the server was doing,
 * since a peer that keeps every other timer quiet (a trickled body, 1xx
 * heads or trailers without end) is what this deadline is for.
 */
static void
on_deadline(struct tk_timer *t, void *arg)
{
	struct get_state *st = arg;
	char dur[32];

	(void)t;
	if (st->conn == NULL || st->reported || st->phase == PH_DONE)
		return;
	cli_format_duration(st->o->max_ms, dur, sizeof(dur));
	if (!st->opened)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time (%s) reached while connecting", dur);
	else if (st->phase == PH_HEAD && st->ninterim > 0)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: 1xx responses for %s (%llu of them) "
		     "and no final response",
		     dur, (unsigned long long)st->ninterim);
	else if (st->phase == PH_HEAD)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: no complete response within %s", dur);
	else if (st->kind == TK_HTTP_BODY_CHUNKED)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: chunked body not complete within %s "
		     "(%llu bytes received)",
		     dur, (unsigned long long)st->got);
	else
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: body not complete within %s (%llu "
		     "bytes received)",
		     dur, (unsigned long long)st->got);
}

static const struct tk_service get_service = {
	.name = "get",
	.open = get_open,
	.data = get_data,
	.close = get_close,
};

/*
 * One exchange with url (its target t, its addresses list), in at most
 * max_left ms if not 0.  Returns the exit code; *next is where -L goes
 * from here (owned by the caller), or NULL.
 */
static int
fetch(const struct get_opts *o, const struct get_target *t,
      struct tk_addrlist *list, const char *url, const char *servername,
      uint64_t max_left, char **next)
{
	struct get_state st;
	struct tk_conn_opts copts;
	struct tk_conn *c;
	int err;

	*next = NULL;
	memset(&st, 0, sizeof(st));
	st.o = o;
	st.t = t;
	st.url = url;
	tk_buf_init(&st.head, HEAD_MAX);
	st.loop = tk_loop_new();
	if (st.loop == NULL)
		return cli_fail("get", url, -errno);
	if (o->idle_ms != 0) {
		st.idle = tk_timer_new(st.loop, on_idle, &st);
		if (st.idle == NULL) {
			st.rc = cli_fail("get", url, -ENOMEM);
			goto out_free_loop;
		}
	}
	if (o->max_ms != 0) {
		st.deadline = tk_timer_new(st.loop, on_deadline, &st);
		if (st.deadline == NULL) {
			st.rc = cli_fail("get", url, -ENOMEM);
			goto out_free_timer;
		}
		tk_timer_start(st.deadline, max_left, 0);
	}
	tk_conn_opts_init(&copts);
	copts.connect_timeout_ms = o->connect_ms;
	/* The idle timeout is ours: it must not count time spent on stdout. */
	copts.idle_timeout_ms = 0;
	copts.tls = t->https ? o->ctx : NULL;
	copts.servername = servername != NULL ? servername : t->host;
	err = tk_conn_connect(st.loop, list, &copts, &get_service, &st, &c);
	if (err < 0) {
		st.rc = cli_fail("get", url, err);
		goto out_free_timer;
	}
	st.conn = c;
	err = tk_loop_run(st.loop);
	if (err < 0 && !st.reported) {
		st.rc = cli_fail("get", url, err);
		st.reported = true;
	}
	if (st.conn != NULL) {
		/* Only after a loop failure: close, and run the callback. */
		tk_conn_close(st.conn, err);
		(void)tk_loop_run_once(st.loop, 0);
	}
out_free_timer:
	tk_timer_free(st.deadline);
	tk_timer_free(st.idle);
out_free_loop:
	tk_buf_free(&st.head);
	tk_loop_free(st.loop);
	if (st.rc == 0)
		*next = st.next;
	else
		free(st.next);
	return st.rc;
}

/* Milliseconds on the monotonic clock, for --max-time across redirects. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Where -L may go from prev: http or https, a URL we can fetch, and
 * https to http only when asked (the rest of the way would be readable
 * and changeable by anyone on the path).  0, or the error is printed and
 * its exit code returned.
 */
static int
redirect_allowed(const struct get_opts *o, const char *prev, const char *next,
		 uint64_t hops)
{
	struct tk_url u;
	size_t n = strspn(next, SCHEME_CHARS);
	bool https = n == 5 && strncasecmp(next, "https", 5) == 0;

	if (hops >= o->max_redirs) {
		cli_error("get", prev,
			  "too many redirects (more than --max-redirs %llu); "
			  "the next was to %s",
			  (unsigned long long)o->max_redirs, next);
		return CLI_EXIT_PROTOCOL;
	}
	if (!https && !(n == 4 && strncasecmp(next, "http", 4) == 0)) {
		cli_error("get", prev,
			  "redirect to '%s' refused: not http or "
			  "https",
			  next);
		return CLI_EXIT_PROTOCOL;
	}
	if (tk_url_parse(next, strlen(next), &u) < 0) {
		cli_error("get", prev, "redirect to a malformed URL '%s'",
			  next);
		return CLI_EXIT_PROTOCOL;
	}
	if (!https && strncasecmp(prev, "https", 5) == 0 && !o->downgrade) {
		cli_error("get", prev,
			  "redirect from https to http refused: %s (use "
			  "--allow-https-downgrade)",
			  next);
		return CLI_EXIT_PROTOCOL;
	}
	return 0;
}

int
cmd_get(int argc, char **argv)
{
	struct get_opts o;
	struct get_target t;
	struct tk_addrlist *list;
	const char *url, *servername;
	char *owned = NULL, *next = NULL, first_host[TK_HOSTLEN];
	uint64_t start = now_ms(), spent, hops;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = make_target(o.url, &t);
	if (rc != 0)
		return rc;
	/* Certificates are read before any I/O (with -L, for later). */
	if (!t.https && o.tls.used && !o.location) {
		rc = cli_usage("get", "%s needs an https:// URL",
			       o.tls.used_name);
		goto out_free_request;
	}
	o.tls.tls = t.https || o.tls.used;
	rc = tlsopt_client_ctx("get", &o.tls, &o.ctx);
	if (rc != 0)
		goto out_free_request;
	snprintf(first_host, sizeof(first_host), "%s", t.host);
	url = o.url;
	for (hops = 0;; hops++) {
		/* --servername is for the host it was given with. */
		servername = strcmp(t.host, first_host) == 0 ? o.tls.servername
							     : NULL;
		if (t.https && o.ctx == NULL) {
			/* -L from http:// to https://: the system's CAs. */
			o.tls.tls = true;
			rc = tlsopt_client_ctx("get", &o.tls, &o.ctx);
			if (rc != 0)
				break;
		}
		rc = tk_resolve(t.host, t.port, o.family,
				t.ipv6 ? TK_RESOLVE_NUMERIC : 0, &list);
		if (rc < 0) {
			rc = cli_fail("get", url, rc);
			break;
		}
		spent = now_ms() - start;
		if (o.max_ms != 0 && spent >= o.max_ms) {
			char dur[32];

			tk_addrlist_free(list);
			cli_error("get", url, "max time (%s) reached",
				  cli_format_duration(o.max_ms, dur,
						      sizeof(dur)));
			rc = CLI_EXIT_TIMEOUT;
			break;
		}
		rc = fetch(&o, &t, list, url, servername,
			   o.max_ms != 0 ? o.max_ms - spent : 0, &next);
		tk_addrlist_free(list);
		if (rc != 0 || next == NULL)
			break;
		rc = redirect_allowed(&o, url, next, hops);
		if (rc != 0)
			break;
		free(t.request);
		t.request = NULL;
		free(owned);
		owned = next;
		next = NULL;
		url = owned;
		rc = make_target(url, &t);
		if (rc != 0)
			break;
	}
out_free_request:
	tk_tls_ctx_free(o.ctx);
	free(t.request);
	free(next);
	free(owned);
	return rc;
}
