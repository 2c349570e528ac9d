/* get_args.c: `tcpkit get`'s help text, its options and the checks of
 * its URL before any I/O. */
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
	"      --no-sync       with -o: rename without syncing first (faster;\n"
	"                      a crash or power loss soon after may leave\n"
	"                      FILE short or empty); a cut transfer still\n"
	"                      leaves FILE as it was\n"
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
	"      --proxy URL     go through a proxy: socks5://, socks5h://,\n"
	"                      socks4a:// or http:// (CONNECT, for http://\n"
	"                      URLs too), [USER:PASSWORD@]HOST[:PORT]; \"\" for\n"
	"                      none.  Without it, as curl: https_proxy or\n"
	"                      HTTPS_PROXY for https://, http_proxy (lower\n"
	"                      case only) for http://, else ALL_PROXY;\n"
	"                      -4 and -6 do not apply through it\n"
	"      --noproxy LIST  hosts reached directly (commas; * for all;\n"
	"                      a name covers its subdomains); default\n"
	"                      NO_PROXY\n"
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
	"  69  connection refused, host or network unreachable, reset;\n"
	"      the proxy refused the request or could not reach the host\n"
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
	"      corrupt or cut gzip or deflate body, another coding; the\n"
	"      proxy does not speak its protocol\n"
	"  77  the proxy refused the credentials\n"
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

/* Long options only; above TLSOPT_ALPN, whose range the TLS ones use. */
enum {
	OPT_MAX_REDIRS = TLSOPT_ALPN + 1,
	OPT_DOWNGRADE,
	OPT_COMPRESSED,
	OPT_PROXY,
	OPT_NOPROXY,
	OPT_NO_SYNC,
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

int
get_parse(int argc, char **argv, struct get_opts *o)
{
	static const struct option longopts[] = {
		{ "include", no_argument, NULL, 'i' },
		{ "fail", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "header", required_argument, NULL, 'H' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-sync", no_argument, NULL, OPT_NO_SYNC },
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
		{ "proxy", required_argument, NULL, OPT_PROXY },
		{ "noproxy", required_argument, NULL, OPT_NOPROXY },
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
		case OPT_NO_SYNC:
			o->no_sync = true;
			break;
		case OPT_PROXY:
			o->proxy_flag = optarg;
			break;
		case OPT_NOPROXY:
			o->noproxy = optarg;
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
	if (o->no_sync && o->output == NULL)
		return cli_usage("get", "--no-sync needs -o FILE");
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
int
get_check_url(const char *url)
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
