/* util.c: error output, exit codes, option values and JSON for the subcommands.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The exit status of a failure: from its class, in one place. */
int
cli_exit_code(int err)
{
	switch (tk_err_class(err)) {
	case TK_CLASS_NONE:
		return CLI_EXIT_OK;
	case TK_CLASS_USAGE:
		return CLI_EXIT_USAGE;
	case TK_CLASS_RESOLVE:
		return CLI_EXIT_NOHOST;
	case TK_CLASS_REFUSED:
		return CLI_EXIT_UNAVAILABLE;
	case TK_CLASS_TIMEOUT:
		return CLI_EXIT_TIMEOUT;
	case TK_CLASS_TLS:
	case TK_CLASS_PROTOCOL:
		return CLI_EXIT_PROTOCOL;
	case TK_CLASS_AUTH:
		return CLI_EXIT_NOPERM;
	case TK_CLASS_IO:
		break;
	}
	return CLI_EXIT_OTHER;
}

static enum cli_log_format log_format = CLI_LOG_TEXT;

void
cli_set_log_format(enum cli_log_format f)
{
	log_format = f;
}

enum cli_log_format
cli_get_log_format(void)
{
	return log_format;
}

char *
cli_iso_time(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	char day[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%03dZ", day, (int)(tv.tv_usec / 1000) % 1000);
	return buf;
}

/*
 * Append s to buf (of size cap, filled to *n) as a quoted value: a JSON
 * string, or a logfmt one (quotes and backslashes escaped, controls as
 * \uXXXX as well: one record must stay on one line).
 */
static void
put_quoted(char *buf, size_t cap, size_t *n, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (*n + 1 < cap)
		buf[(*n)++] = '"';
	for (; *s != '\0' && *n + 8 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			buf[(*n)++] = '\\';
			buf[(*n)++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			*n += (size_t)snprintf(buf + *n, cap - *n, "\\u00%c%c",
					       hex[ch >> 4], hex[ch & 15]);
		} else {
			buf[(*n)++] = (char)ch;
		}
	}
	if (*n + 1 < cap)
		buf[(*n)++] = '"';
	buf[*n] = '\0';
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static void
put_pair(char *buf, size_t cap, size_t *n, const char *key, const char *val,
	 bool first)
{
	bool json = log_format == CLI_LOG_JSON;
	const char *sep = first ? "" : json ? "," : " ";

	if (*n + strlen(key) + strlen(val) + 8 >= cap)
		return;
	*n += (size_t)snprintf(buf + *n, cap - *n,
			       json ? "%s\"%s\":" : "%s%s=", sep, key);
	/* logfmt quotes only what needs it, as serve's records do. */
	if (!json && val[0] != '\0' && strpbrk(val, " =\"\\") == NULL &&
	    !has_control(val)) {
		*n += (size_t)snprintf(buf + *n, cap - *n, "%s", val);
		return;
	}
	put_quoted(buf, cap, n, val);
}

static void __attribute__((format(printf, 4, 0)))
vlog(const char *event, const char *key, const char *value, const char *fmt,
     va_list ap)
{
	char msg[1024], line[4096], ts[40];
	size_t n = 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_format == CLI_LOG_TEXT) {
		fprintf(stderr, "%s\n", msg);
		return;
	}
	if (log_format == CLI_LOG_JSON)
		line[n++] = '{';
	line[n] = '\0';
	put_pair(line, sizeof(line), &n, "ts", cli_iso_time(ts, sizeof(ts)),
		 true);
	put_pair(line, sizeof(line), &n, "event", event, false);
	if (key != NULL)
		put_pair(line, sizeof(line), &n, key, value, false);
	put_pair(line, sizeof(line), &n, "msg", msg, false);
	if (n + 3 > sizeof(line))
		n = sizeof(line) - 3;
	if (log_format == CLI_LOG_JSON)
		line[n++] = '}';
	line[n++] = '\n';
	line[n] = '\0';
	fputs(line, stderr);
}

void
cli_log(const char *event, const char *key, const char *value, const char *fmt,
	...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(event, key, value, fmt, ap);
	va_end(ap);
}

void
cli_log_listening(const struct tk_server *srv)
{
	char where[TK_ADDRSTRLEN];

	for (size_t i = 0; i < tk_server_listener_count(srv); i++) {
		const struct tk_addr *a = tk_server_addr(srv, i);
		bool seen = false;

		for (size_t k = 0; k < i && !seen; k++)
			seen = tk_addr_equal(tk_server_addr(srv, k), a);
		if (seen)
			continue;
		tk_addr_format(a, where, sizeof(where));
		cli_log("listening", "addr", where, "listening on %s", where);
	}
}

static void __attribute__((format(printf, 3, 0)))
verror(const char *what, const char *where, const char *fmt, va_list ap)
{
	char why[512];

	vsnprintf(why, sizeof(why), fmt, ap);
	/* One line, whatever the pieces hold. */
	for (char *p = why; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (where == NULL)
		where = "";
	/* Text in full, however long WHERE (a URL) is. */
	if (log_format == CLI_LOG_TEXT)
		fprintf(stderr, "tcpkit: %s%s%s: %s\n", what,
			*where != '\0' ? " " : "", where, why);
	else
		cli_log(strcmp(what, "warning") == 0 ? "warning" : "error",
			NULL, NULL, "tcpkit: %s%s%s: %s", what,
			*where != '\0' ? " " : "", where, why);
}

void
cli_error(const char *what, const char *where, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(what, where, fmt, ap);
	va_end(ap);
}

int
cli_fail(const char *what, const char *where, int err)
{
	cli_error(what, where, "%s", tk_strerror(err));
	return cli_exit_code(err);
}

int
cli_usage(const char *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_log("error", NULL, NULL, "tcpkit: %s: %s (see 'tcpkit help %s')",
		cmd, msg, cmd);
	return CLI_EXIT_USAGE;
}

/* The last abbreviation cli_getopt() refused, for cli_bad_option(). */
static const char *abbrev_typed, *abbrev_name;
static int abbrev_len;

int
cli_getopt(int argc, char **argv, const char *optstring,
	   const struct option *longopts)
{
	const struct option *lo;
	const char *arg;
	int idx = -1, ch, len;

	ch = getopt_long(argc, argv, optstring, longopts, &idx);
	if (ch == -1 || ch == '?' || ch == ':' || idx < 0)
		return ch;
	lo = &longopts[idx];
	/* "--name value": the value is the last element taken. */
	arg = argv[optind - 1];
	if (lo->has_arg == required_argument && optarg == arg && optind >= 2)
		arg = argv[optind - 2];
	if (strncmp(arg, "--", 2) != 0)
		return ch;
	len = (int)strcspn(arg + 2, "=");
	if ((size_t)len == strlen(lo->name) &&
	    strncmp(arg + 2, lo->name, (size_t)len) == 0)
		return ch;
	abbrev_typed = arg;
	abbrev_len = len + 2;
	abbrev_name = lo->name;
	return CLI_GETOPT_ABBREV;
}

int
cli_bad_option(const char *cmd, char **argv, int ch)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;

	if (ch == CLI_GETOPT_ABBREV)
		return cli_usage(cmd,
				 "unknown option '%.*s' (options are never "
				 "abbreviated: write '--%s' in full)",
				 abbrev_len, abbrev_typed, abbrev_name);

	/*
	 * For a long option, name it as typed: optopt holds only its internal
	 * letter, which may not exist as a short option.
	 */
	if (arg != NULL && strncmp(arg, "--", 2) == 0) {
		int len = (int)strcspn(arg, "=");

		if (ch == ':')
			return cli_usage(cmd, "option '%.*s' needs a value",
					 len, arg);
		if (arg[len] == '=' && optopt != 0)
			return cli_usage(cmd, "option '%.*s' takes no value",
					 len, arg);
		return cli_usage(cmd, "unknown option '%.*s'", len, arg);
	}
	if (ch == ':')
		return cli_usage(cmd, "option '-%c' needs a value", optopt);
	return cli_usage(cmd, "unknown option '-%c'", optopt);
}

int
cli_parse_uint(const char *cmd, const char *opt, const char *text, uint64_t min,
	       uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		goto bad;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0')
		goto bad;
	if (v < min || v > max) {
		cli_usage(cmd, "%s must be between %llu and %llu, not %s", opt,
			  (unsigned long long)min, (unsigned long long)max,
			  text);
		return -1;
	}
	*out = v;
	return 0;
bad:
	cli_usage(cmd, "%s needs a whole number, not '%s'", opt, text);
	return -1;
}

int
cli_parse_port(const char *cmd, const char *opt, const char *text,
	       uint16_t *out)
{
	uint64_t v;

	if (text[0] >= '0' && text[0] <= '9' &&
	    strspn(text, "0123456789") == strlen(text) &&
	    (strlen(text) > 5 || strtoul(text, NULL, 10) > 65535)) {
		cli_usage(cmd, "%s %s is out of range (0-65535)", opt, text);
		return -1;
	}
	if (cli_parse_uint(cmd, opt, text, 0, 65535, &v) < 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int
cli_check_host(const char *cmd, const char *host)
{
	if (host[0] == '\0')
		return cli_usage(cmd, "missing HOST (the host name is empty)");
	/* A DNS name has at most 253 characters. */
	if (strlen(host) > 253)
		return cli_usage(cmd,
				 "host name too long (%zu characters, at "
				 "most 253)",
				 strlen(host));
	return 0;
}

int
cli_check_target(const char *cmd, const char *host, const char *port)
{
	size_t n = strspn(port, "0123456789");
	unsigned long v;

	if (cli_check_host(cmd, host) != 0)
		return CLI_EXIT_USAGE;
	if (port[0] == '\0')
		return cli_usage(cmd, "missing PORT");
	if (n == 0 || port[n] != '\0')
		return 0; /* a service name: the resolver knows it or not */
	v = n > 6 ? 1000000 : strtoul(port, NULL, 10);
	if (v > 65535)
		return cli_usage(cmd, "port %s is out of range (1-65535)",
				 port);
	if (v == 0)
		return cli_usage(cmd,
				 "port 0 cannot be connected to (1-65535)");
	return 0;
}

int
cli_split_target(const char *cmd, const char *arg, char host[TK_HOSTLEN],
		 char port[TK_PORTLEN])
{
	const char *colon = strrchr(arg, ':');
	int err;

	if (colon != NULL && colon - arg > 253) {
		host[0] = '\0';
		return cli_usage(cmd,
				 "host name too long (%zu characters, at "
				 "most 253)",
				 (size_t)(colon - arg));
	}
	err = tk_hostport_split(arg, host, port);
	if ((err == 0 && port[0] == '\0') ||
	    (err == TK_EBADPORT && colon != NULL && colon[1] == '\0'))
		return cli_usage(cmd,
				 "missing PORT (give HOST PORT or HOST:PORT, "
				 "not '%s')",
				 arg);
	if (err == TK_EBADPORT && colon != NULL &&
	    strlen(colon + 1) == strspn(colon + 1, "0123456789"))
		return cli_usage(cmd, "port %s is out of range (1-65535)",
				 colon + 1);
	if (err == TK_EBADPORT)
		return cli_usage(cmd, "unknown port '%s'",
				 colon != NULL ? colon + 1 : arg);
	if (err < 0)
		return cli_usage(cmd, "malformed address '%s'", arg);
	return cli_check_target(cmd, host, port);
}

int
cli_parse_duration(const char *cmd, const char *opt, const char *text,
		   bool allow_zero, uint64_t *ms)
{
	const uint64_t day = 24 * 3600 * 1000ULL;
	double v, scale = 1000;
	char *end;

	if (!((text[0] >= '0' && text[0] <= '9') || text[0] == '.'))
		goto bad;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || !isfinite(v))
		goto bad;
	if (strcmp(end, "ms") == 0)
		scale = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		scale = 1000;
	else if (strcmp(end, "m") == 0)
		scale = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		scale = 3600 * 1000;
	else
		goto bad;
	v *= scale;
	if (v > (double)day) {
		cli_usage(cmd, "%s must be at most 24h, not %s", opt, text);
		return -1;
	}
	*ms = (uint64_t)llround(v);
	if (*ms == 0 && v > 0)
		*ms = 1;
	if (*ms == 0 && !allow_zero) {
		cli_usage(cmd, "%s must be more than zero", opt);
		return -1;
	}
	return 0;
bad:
	cli_usage(cmd,
		  "%s needs a duration such as 10, 1.5s or 250ms, not '%s'",
		  opt, text);
	return -1;
}

void
cli_json_string(FILE *f, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	fputc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		switch (ch) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				fprintf(f, "\\u00%c%c", hex[ch >> 4],
					hex[ch & 15]);
			else
				fputc(ch, f);
		}
	}
	fputc('"', f);
}

char *
cli_timestamp(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;
	char day[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ld", day, (long)tv.tv_usec);
	return buf;
}

char *
cli_format_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%.3gs", (double)ms / 1000.0);
	return buf;
}

int
cli_write_all(int fd, const void *p, size_t len)
{
	const char *s = p;

	while (len > 0) {
		ssize_t n = write(fd, s, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int
cli_listen_tcp(struct tk_server *s, const char *host, bool wildcard,
	       uint16_t port, struct tk_listen_why *why)
{
	const char *any[] = { "::" }, *v4[] = { "0.0.0.0" };
	int err;

	if (host[0] != '\0')
		return tk_server_listen_hosts(s, &host, 1, port, 0, why);
	if (!wildcard) /* a bare PORT: loopback, as everywhere */
		return tk_server_listen_hosts(s, NULL, 0, port, 0, why);
	err = tk_server_listen_hosts(s, any, 1, port, 0, why);
	if (err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL)
		err = tk_server_listen_hosts(s, v4, 1, port, 0, why);
	return err;
}
