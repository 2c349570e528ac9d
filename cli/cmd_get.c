/* cmd_get.c: `tcpkit get`: its arguments and its output; the HTTP/1.1
 * exchange itself is the library's (tk_http_get()). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "get.h"
#include "tlsopt.h"

/* RFC 3986 section 3.1, after the first letter. */
#define SCHEME_CHARS                                                           \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."

const char cmd_get_help[] =
	"usage: tcpkit get [OPTIONS] URL\n"
	"\n"
	"Fetch URL with one HTTP/1.1 GET and write the response body to\n"
	"stdout (or -o FILE), byte for byte, as it arrives.  This is tutorial 1's client\n"
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
	"and then the -H fields (a Host, User-Agent or Accept given with -H\n"
	"replaces the default, a Connection is dropped: one exchange per\n"
	"connection; Host, Authorization, Cookie and\n"
	"Proxy-Authorization go to URL's host only, not to other hosts -L\n"
	"leads to).\n"
	"\n"
	"Options:\n"
	"  -H, --header 'NAME: VALUE'\n"
	"                      send this header field too (repeatable); no\n"
	"                      CR, LF or other controls\n"
	"  -o, --output FILE   write the body to FILE instead of stdout, whole\n"
	"                      or not at all: into a temporary file next to\n"
	"                      it, synced and renamed over FILE at the end;\n"
	"                      on any failure FILE is left as it was\n"
	"  -I, --head          send HEAD instead of GET and write the\n"
	"                      response head (as -i does); no body\n"
	"      --compressed    ask for gzip or deflate (Accept-Encoding) and\n"
	"                      write the body inflated; a corrupt or cut\n"
	"                      compressed body is an error (exit 76)\n"
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
	"  64  usage: bad option, malformed URL, unsupported scheme, a -H\n"
	"      that is not 'NAME: VALUE'\n"
	"  66  a --cacert, --cert or --key file is missing\n"
	"  68  host not found\n"
	"  69  connection refused, host or network unreachable, reset\n"
	"  73  -o: FILE cannot be created (no such directory, no\n"
	"      permission)\n"
	"  74  -o: FILE cannot be written, synced or renamed\n"
	"  75  connect timeout (-w), no data for too long (-t), the whole\n"
	"      exchange over --max-time, TLS handshake timeout\n"
	"  76  malformed HTTP response (including both Content-Length and\n"
	"      Transfer-Encoding), response head over 64 KiB, the\n"
	"      connection closed before the end of the body, an https\n"
	"      body delimited by the close ended without TLS close_notify;\n"
	"      -L: too many redirects, a redirect to a malformed URL, to\n"
	"      another scheme, or from https to http; --compressed: a\n"
	"      corrupt or cut gzip or deflate body, another coding\n"
	"\n"
	"Examples:\n"
	"  tcpkit get http://example.com/               the home page\n"
	"  tcpkit get -i http://127.0.0.1:8080/         with the headers\n"
	"  tcpkit get -f http://[::1]:8080/x > x.bin    save, fail on 404\n"
	"  tcpkit get -v -w 2s -t 5s http://host/path   verbose, short waits\n"
	"  tcpkit get -L -m 30s http://example.com/      follow redirects,\n"
	"                                                30s in all\n"
	"  tcpkit get -I http://127.0.0.1:8080/         the head only\n"
	"  tcpkit get --compressed -o page.html -H 'Accept-Language: fr' \\\n"
	"      http://example.com/                       saved whole\n";

/* -H fields at most: more is not a user typing. */
#define MAX_HEADERS 64

struct get_opts {
	const char *url;
	bool include;
	bool tty_out; /* the output is a terminal: -i heads are escaped */
	bool fail;
	bool verbose;
	const char *output; /* -o FILE, or NULL: stdout */
	const char *headers[MAX_HEADERS + 1];
	size_t nheaders;
	struct tk_http_opts http;
	struct tlsopt tls;
	struct tk_tls_ctx *ctx;
};

/* One run of the command: where the output goes and how it ended. */
struct get_state {
	const struct get_opts *o;
	struct tk_loop *loop;
	const char *url;     /* the hop's: the errors name it */
	struct get_out file; /* -o */
	int fd;		     /* 1 or file.fd */
	int rc;		     /* the exit code */
	bool reported;	     /* the error line is printed (or none is due) */
	bool ended;	     /* done has run */
};

/* Long options only; above TLSOPT_ALPN, whose range the TLS ones use. */
enum {
	OPT_MAX_REDIRS = TLSOPT_ALPN + 1,
	OPT_DOWNGRADE,
	OPT_COMPRESSED,
};

/* -H: one "Name: value" field; 0 or the usage error's exit code. */
static int
take_header(struct get_opts *o, const char *arg)
{
	size_t len;
	char *shown;
	int rc;

	if (tk_http_field_check(arg) == 0 && strchr(arg, ':') != NULL) {
		if (o->nheaders == MAX_HEADERS)
			return cli_usage("get", "more than %d -H/--header",
					 MAX_HEADERS);
		o->headers[o->nheaders++] = arg;
		return 0;
	}
	shown = get_escape(arg, strlen(arg), false, &len);
	rc = cli_usage("get",
		       "-H/--header '%s': expected 'NAME: VALUE' (a token, a "
		       "colon, no CR, LF or other controls)",
		       shown != NULL ? shown : "");
	free(shown);
	return rc;
}

static int
parse_args(int argc, char **argv, struct get_opts *o)
{
	static const struct option longopts[] = {
		{ "include", no_argument, NULL, 'i' },
		{ "fail", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "header", required_argument, NULL, 'H' },
		{ "output", required_argument, NULL, 'o' },
		{ "head", no_argument, NULL, 'I' },
		{ "compressed", no_argument, NULL, OPT_COMPRESSED },
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
	struct tk_http_opts *h = &o->http;
	bool v4 = false, v6 = false;
	uint64_t n;
	int ch, rc;

	memset(o, 0, sizeof(*o));
	tk_http_opts_init(h);
	h->connect_timeout_ms = TK_DEFAULT_CONNECT_TIMEOUT_MS;
	h->idle_timeout_ms = 30000;
	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":ifvH:o:Iw:t:m:L46h", longopts)) !=
	       -1) {
		rc = 0;
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
		case 'H':
			rc = take_header(o, optarg);
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'I':
			h->head = true;
			o->include = true;
			break;
		case OPT_COMPRESSED:
			h->compressed = true;
			break;
		case 'w':
			rc = cli_parse_duration("get", "-w/--connect-timeout",
						optarg, false,
						&h->connect_timeout_ms);
			break;
		case 't':
			rc = cli_parse_duration("get", "-t/--timeout", optarg,
						true, &h->idle_timeout_ms);
			break;
		case 'm':
			rc = cli_parse_duration("get", "-m/--max-time", optarg,
						true, &h->max_time_ms);
			break;
		case 'L':
			h->follow = true;
			break;
		case OPT_MAX_REDIRS:
			rc = cli_parse_uint("get", "--max-redirs", optarg, 0,
					    1000, &n);
			h->max_redirs = (unsigned)n;
			break;
		case OPT_DOWNGRADE:
			h->allow_downgrade = true;
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
				break;
			}
			return cli_bad_option("get", argv, ch);
		}
		if (rc != 0)
			return rc < 0 ? CLI_EXIT_USAGE : rc;
	}
	if (v4 && v6)
		return cli_usage("get", "-4 and -6 exclude each other");
	h->family = v4 ? AF_INET : v6 ? AF_INET6 : AF_UNSPEC;
	h->headers = o->nheaders > 0 ? o->headers : NULL;
	if (optind == argc)
		return cli_usage("get", "no URL given");
	o->url = argv[optind++];
	if (optind < argc)
		return cli_usage("get", "unexpected argument '%s'",
				 argv[optind]);
	o->tty_out = o->output == NULL && isatty(STDOUT_FILENO);
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
 * Check the URL before any I/O, for an error more precise than
 * tk_http_get()'s.  0 or the exit code, printed.
 */
static int
check_url(const char *url)
{
	struct tk_url u;
	char why[256];
	size_t n = strspn(url, SCHEME_CHARS);

	/* The scheme first: "ftp://..." is unsupported even if well formed. */
	if (n > 0 && strncmp(url + n, "://", 3) == 0 &&
	    !(n == 5 && strncasecmp(url, "https", 5) == 0) &&
	    !(n == 4 && strncasecmp(url, "http", 4) == 0)) {
		cli_error("get", url,
			  "unsupported scheme '%.*s' (http or https)", (int)n,
			  url);
		return CLI_EXIT_USAGE;
	}
	if (tk_url_parse(url, strlen(url), &u) < 0) {
		url_problem(url, why, sizeof(why));
		cli_error("get", url, "%s", why);
		return CLI_EXIT_USAGE;
	}
	/* The parser takes port 0, which nothing can be fetched from. */
	if (u.port.len > 0 && strspn(url + u.port.off, "0") == u.port.len) {
		cli_error("get", url, "malformed URL: bad port '%.*s'",
			  (int)u.port.len, url + u.port.off);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* Report an error once; the exchange is ended by the caller. */
static void fail(struct get_state *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct get_state *st, int rc, const char *fmt, ...)
{
	const char *url = st->url != NULL ? st->url : st->o->url;
	char why[1024];
	va_list ap;

	if (st->reported)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cli_error("get", url, "%s", why);
	st->reported = true;
	st->rc = rc;
}

/*
 * Write as the bytes come: memory stays bounded whatever the body's size.
 * 0, or a code that ends the exchange: stdout failed, or whoever read it
 * went away (a pipe into head), which ends quietly with 0 as for `tcpkit
 * connect`.
 */
static int
emit(struct get_state *st, const char *p, size_t n)
{
	int err = cli_write_all(st->fd, p, n);

	if (err == -EPIPE && st->o->output == NULL) {
		st->reported = true;
		return err;
	}
	if (err < 0)
		fail(st,
		     st->o->output != NULL ? CLI_EXIT_IOERR : CLI_EXIT_OTHER,
		     "cannot write to %s: %s",
		     st->o->output != NULL ? st->o->output : "stdout",
		     tk_strerror(err));
	return err;
}

/* One line of network text on stderr, escaped (see get_escape()). */
static void
print_escaped(const char *prefix, const char *s, size_t n)
{
	size_t len;
	char *e = get_escape(s, n, false, &len);

	fprintf(stderr, "%s%s\n", prefix, e != NULL ? e : "(out of memory)");
	free(e);
}

/* -i: a head as received into a file or a pipe; escaped on a terminal. */
static int
emit_head(struct get_state *st, const char *h, size_t hlen)
{
	size_t len;
	char *e;
	int err;

	if (!st->o->tty_out)
		return emit(st, h, hlen);
	e = get_escape(h, hlen, true, &len);
	if (e == NULL) {
		fail(st, CLI_EXIT_OTHER, "%s", tk_strerror(-ENOMEM));
		return -ENOMEM;
	}
	err = emit(st, e, len);
	free(e);
	return err;
}

static int
on_open(struct tk_http_req *req, struct tk_conn *c, void *arg)
{
	struct get_state *st = arg;
	const char *r = tk_http_req_info(req)->request;
	char where[TK_ADDRSTRLEN];

	st->url = tk_http_req_info(req)->url;
	if (st->o->verbose) {
		fprintf(stderr, "connected to %s\n",
			tk_addr_format(tk_conn_peer(c), where, sizeof(where)));
		if (tk_conn_is_tls(c))
			tlsopt_print_info(c);
		fprintf(stderr, "> %.*s\n", (int)strcspn(r, "\r"), r);
	}
	return 0;
}

/* Without -L, a redirect is shown as any response, and where it points. */
static void
redirect_notice(struct get_state *st, struct tk_http_req *req,
		const struct tk_http_response *r, const char *h)
{
	const char *loc;
	char *raw, target[4096], *shown;
	size_t llen, slen;
	ssize_t n;

	loc = tk_http_header_find(h, r, "location", &llen);
	if (st->o->http.follow || loc == NULL || llen == 0 ||
	    (r->status != 301 && r->status != 302 && r->status != 303 &&
	     r->status != 307 && r->status != 308))
		return;
	raw = strndup(loc, llen);
	if (raw == NULL)
		return;
	n = tk_url_resolve(tk_http_req_info(req)->url, raw, target,
			   sizeof(target));
	/* Text from the server: escaped before it reaches the terminal. */
	shown = n >= 0 ? get_escape(target, (size_t)n, false, &slen)
		       : get_escape(raw, llen, false, &slen);
	cli_error("get", tk_http_req_info(req)->url, "%d -> %s (use -L)",
		  r->status, shown != NULL ? shown : "?");
	free(shown);
	free(raw);
}

static int
on_head(struct tk_http_req *req, const struct tk_http_response *r,
	const char *h, size_t len, void *arg)
{
	struct get_state *st = arg;
	size_t n = strcspn(h, "\r\n");

	if (st->o->verbose)
		print_escaped("< ", h, n < len ? n : len);
	if (r->status >= 200 && st->o->fail && r->status >= 400) {
		char *reason =
			get_escape(h + r->reason.off, r->reason.len, false, &n);

		fail(st, CLI_EXIT_OTHER, "server answered %d%s%s", r->status,
		     r->reason.len > 0 ? " " : "",
		     reason != NULL ? reason : "");
		free(reason);
		return -ECANCELED;
	}
	if (r->status >= 200)
		redirect_notice(st, req, r, h);
	return st->o->include ? emit_head(st, h, len) : 0;
}

static int
on_redirect(struct tk_http_req *req, int status, const char *url, void *arg)
{
	struct get_state *st = arg;
	char prefix[64];

	(void)req;
	if (st->o->verbose) {
		snprintf(prefix, sizeof(prefix), "redirected (%d) to ", status);
		print_escaped(prefix, url, strlen(url));
	}
	return 0;
}

static int
on_body(struct tk_http_req *req, const char *data, size_t len, void *arg)
{
	(void)req;
	return emit(arg, data, len);
}

/* --max-time: say what the server was doing when time ran out. */
static void
max_time_reached(struct get_state *st, const struct tk_http_info *i)
{
	char dur[32];

	cli_format_duration(st->o->http.max_time_ms, dur, sizeof(dur));
	if (i->phase == TK_HTTP_CONNECTING)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time (%s) reached while connecting", dur);
	else if (i->phase == TK_HTTP_HEAD && i->ninterim > 0)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: 1xx responses for %s (%llu of them) "
		     "and no final response",
		     dur, (unsigned long long)i->ninterim);
	else if (i->phase == TK_HTTP_HEAD)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: no complete response within %s", dur);
	else
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: %sbody not complete within %s (%llu "
		     "bytes received)",
		     i->kind == TK_HTTP_BODY_CHUNKED ? "chunked " : "", dur,
		     (unsigned long long)i->got);
}

/* A refused redirect, in the words of the options that govern it. */
static void
redirect_refused(struct get_state *st, int err, const struct tk_http_info *i)
{
	const char *to = i->location != NULL ? i->location : "";
	size_t n = strspn(to, SCHEME_CHARS), len;
	char *shown;

	if (err == TK_EREDIRECTS) {
		fail(st, CLI_EXIT_PROTOCOL,
		     "too many redirects (more than --max-redirs %u); the "
		     "next was to %s",
		     st->o->http.max_redirs, to);
	} else if (err == TK_EDOWNGRADE) {
		fail(st, CLI_EXIT_PROTOCOL,
		     "redirect from https to http refused: %s (use "
		     "--allow-https-downgrade)",
		     to);
	} else if (!i->location_resolved) {
		shown = get_escape(to, strlen(to), false, &len);
		fail(st, CLI_EXIT_PROTOCOL,
		     "%d redirect to a malformed Location '%s'", i->status,
		     shown != NULL ? shown : "");
		free(shown);
	} else if (!(n == 5 && strncasecmp(to, "https", 5) == 0) &&
		   !(n == 4 && strncasecmp(to, "http", 4) == 0)) {
		fail(st, CLI_EXIT_PROTOCOL,
		     "redirect to '%s' refused: not http or https", to);
	} else {
		fail(st, CLI_EXIT_PROTOCOL, "redirect to a malformed URL '%s'",
		     to);
	}
}

static void
on_done(struct tk_http_req *req, int err, void *arg)
{
	struct get_state *st = arg;
	const struct tk_http_info *i = tk_http_req_info(req);
	char dur[32], why[512];

	st->ended = true;
	st->url = i->url;
	tk_loop_stop(st->loop);
	if (st->reported || err == 0)
		return;
	if (err == TK_ECONNTIMEDOUT) {
		fail(st, CLI_EXIT_TIMEOUT, "connect timed out after %s",
		     cli_format_duration(st->o->http.connect_timeout_ms, dur,
					 sizeof(dur)));
	} else if (err == TK_EIDLE) {
		fail(st, CLI_EXIT_TIMEOUT, "idle timeout (no data for %s)",
		     cli_format_duration(st->o->http.idle_timeout_ms, dur,
					 sizeof(dur)));
	} else if (err == TK_ETIMEDOUT) {
		max_time_reached(st, i);
	} else if (err == TK_EREDIRECTS || err == TK_EREDIRECT ||
		   err == TK_EDOWNGRADE) {
		redirect_refused(st, err, i);
	} else if (i->detail[0] != '\0') {
		fail(st, cli_exit_code(err), "%s", i->detail);
	} else if (i->conn != NULL) {
		fail(st, cli_exit_code(err), "%s",
		     tlsopt_why(i->conn, err, why, sizeof(why)));
	} else {
		fail(st, cli_exit_code(err), "%s", tk_strerror(err));
	}
	if (st->o->verbose && i->conn_error[0] != '\0')
		fprintf(stderr, "last attempt: %s\n", i->conn_error);
	st->url = NULL;
}

static const struct tk_http_cb get_cb = {
	.open = on_open,
	.head = on_head,
	.redirect = on_redirect,
	.body = on_body,
	.done = on_done,
};

/* The exchange, on a loop of its own.  The exit code. */
static int
fetch(struct get_opts *o)
{
	struct get_state st = { .o = o, .fd = STDOUT_FILENO };
	struct tk_http_req *req;
	int err;

	if (o->output != NULL) {
		st.rc = get_out_open(&st.file, o->output);
		if (st.rc != 0)
			return st.rc;
		st.fd = st.file.fd;
	}
	if ((err = tk_loop_new(&st.loop)) < 0) {
		st.rc = cli_fail("get", o->url, err);
		goto out;
	}
	err = tk_http_get(st.loop, o->url, &o->http, &get_cb, &st, &req);
	if (err < 0) {
		st.rc = cli_fail("get", o->url, err);
		goto out_loop;
	}
	err = tk_loop_run(st.loop);
	if (!st.ended) {
		/* Only after a loop failure: stop, and let the close run. */
		fail(&st, cli_exit_code(err), "%s", tk_strerror(err));
		tk_http_req_cancel(req);
		(void)tk_loop_run_once(st.loop, 0);
	}
out_loop:
	tk_loop_free(st.loop);
out:
	if (o->output != NULL && st.rc == 0)
		st.rc = get_out_commit(&st.file);
	else if (o->output != NULL)
		get_out_discard(&st.file);
	return st.rc;
}

int
cmd_get(int argc, char **argv)
{
	struct get_opts o;
	bool https;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = check_url(o.url);
	if (rc != 0)
		return rc;
	https = strncasecmp(o.url, "https:", 6) == 0;
	if (!https && o.tls.used && !o.http.follow)
		return cli_usage("get", "%s needs an https:// URL",
				 o.tls.used_name);
	/* Certificates are read before any I/O (with -L, for later hops). */
	o.tls.tls = https || o.tls.used || o.http.follow;
	rc = tlsopt_client_ctx("get", &o.tls, &o.ctx);
	if (rc != 0)
		return rc;
	o.http.tls = o.ctx;
	o.http.servername = o.tls.servername;
	rc = fetch(&o);
	tk_tls_ctx_free(o.ctx);
	return rc;
}
