/* cli.h: helpers shared by the tcpkit subcommands (errors, exit codes,
 * options). */
#ifndef TK_CLI_H
#define TK_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tcpkit.h"

/* Exit codes (sysexits), listed in `tcpkit help` and the README. */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_OTHER = 1,
	CLI_EXIT_USAGE = 64,	   /* EX_USAGE */
	CLI_EXIT_DATAERR = 65,	   /* EX_DATAERR: bench merge's input */
	CLI_EXIT_NOINPUT = 66,	   /* EX_NOINPUT: an input file is missing */
	CLI_EXIT_NOHOST = 68,	   /* EX_NOHOST: unknown host */
	CLI_EXIT_UNAVAILABLE = 69, /* EX_UNAVAILABLE: refused/unreachable */
	CLI_EXIT_CANTCREAT = 73,   /* EX_CANTCREAT: get -o cannot create */
	CLI_EXIT_IOERR = 74,	   /* EX_IOERR: get -o cannot write */
	CLI_EXIT_TIMEOUT = 75,	   /* EX_TEMPFAIL: timed out */
	CLI_EXIT_PROTOCOL = 76,	   /* EX_PROTOCOL: protocol or TLS error */
	CLI_EXIT_NOPERM = 77,	   /* EX_NOPERM: credentials refused */
};

/* One subcommand: `tcpkit NAME ...`. */
struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
	const char *summary;		   /* one line for `tcpkit help` */
	const char *help; /* the full `tcpkit help NAME` text */
};

/* The exit code for a library error code. */
int cli_exit_code(int err);

/*
 * Print "tcpkit: WHAT WHERE: WHY" on stderr, one line.  where may be NULL or
 * "" (then "tcpkit: WHAT: WHY").
 */
void cli_error(const char *what, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* cli_error() with tk_strerror(err) as the why; returns cli_exit_code(err). */
int cli_fail(const char *what, const char *where, int err);
/*
 * A usage error of command cmd: "tcpkit: CMD: MESSAGE (see 'tcpkit help
 * CMD')"; returns CLI_EXIT_USAGE.
 */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * getopt_long() with every long option matched exactly: getopt_long() takes
 * any unambiguous prefix ("--allow" for "--allow-remote-shutdown"), and an
 * abbreviation must never turn a switch on.  A prefix returns
 * CLI_GETOPT_ABBREV, which cli_bad_option() reports.
 */
#define CLI_GETOPT_ABBREV (-2)
struct option;
int cli_getopt(int argc, char **argv, const char *optstring,
	       const struct option *longopts);
/*
 * Report the option getopt_long() rejected: ch is what it returned, '?' for
 * an unknown option or ':' for a missing value (optstrings start with ':'
 * and opterr is 0), or CLI_GETOPT_ABBREV.  Returns CLI_EXIT_USAGE.
 */
int cli_bad_option(const char *cmd, char **argv, int ch);
/* Print a command's help text on stdout; returns 0. */
int cli_help(const char *cmd);
/*
 * This program as a shell word for a hint the user may type back: the path
 * it was run by, quoted if need be, or "tcpkit" when found in PATH.
 */
const char *cli_prog(void);

/*
 * Option values, range-checked with the option named in the error.  Each
 * returns 0, or prints a usage error and returns -1.
 */
int cli_parse_uint(const char *cmd, const char *opt, const char *text,
		   uint64_t min, uint64_t max, uint64_t *out);
int cli_parse_port(const char *cmd, const char *opt, const char *text,
		   uint16_t *out);
/*
 * A client's target, checked alike in every command (usage errors, exit
 * 64): an empty or over-long HOST, a numeric PORT out of range or 0.
 * cli_split_target() splits "HOST:PORT" or "[V6]:PORT" first.  Each
 * returns 0 or CLI_EXIT_USAGE after printing the error.
 */
int cli_check_host(const char *cmd, const char *host);
int cli_check_target(const char *cmd, const char *host, const char *port);
int cli_split_target(const char *cmd, const char *arg, char host[TK_HOSTLEN],
		     char port[TK_PORTLEN]);
/*
 * Listen on a passive endpoint's TCP address: host (one, "" for none), a
 * bare PORT (wildcard false) on loopback, ":PORT" on every address
 * (dual-stack, IPv4 alone where there is no IPv6).  As
 * tk_server_listen_hosts().
 */
int cli_listen_tcp(struct tk_server *s, const char *host, bool wildcard,
		   uint16_t port, struct tk_listen_why *why);
/* "1 connection", "2 connections": n and word, with an s unless n is 1. */
#define CLI_PLURAL(n) ((n) == 1 ? "" : "s")
/*
 * A duration: "10" or "1.5" (seconds), "250ms", "2s", "1m", "1h"; at most a
 * day; "0" is accepted when allow_zero (meaning "none").
 */
int cli_parse_duration(const char *cmd, const char *opt, const char *text,
		       bool allow_zero, uint64_t *ms);

/*
 * The format of everything on stderr: text for people (the default), or
 * one logfmt or JSON record per line for a log shipper (serve
 * --log-format).  Errors and warnings follow it too.
 */
enum cli_log_format {
	CLI_LOG_TEXT,
	CLI_LOG_LOGFMT,
	CLI_LOG_JSON,
};
void cli_set_log_format(enum cli_log_format f);
enum cli_log_format cli_get_log_format(void);
/*
 * One line on stderr, written with one call (worker threads log too).
 * Text: the message as is.  logfmt and JSON: ts (UTC), event, key=value
 * when key is not NULL, and msg, the text line.
 */
void cli_log(const char *event, const char *key, const char *value,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * "listening on ADDR" for each of srv's listeners, an address once (a
 * handed-over SO_REUSEPORT group has a socket per worker, one address).
 */
void cli_log_listening(const struct tk_server *srv);
/* UTC with milliseconds, for machine formats: 2026-11-24T10:00:00.123Z */
char *cli_iso_time(char *buf, size_t len);

/* Write s[0..len) as a JSON string, quotes included. */
void cli_json_string(FILE *f, const char *s, size_t len);
/* Local time "2026-11-24 10:00:00.123456" (Python's str(datetime.now())). */
char *cli_timestamp(char *buf, size_t len);
/* Format a duration in ms as "1.5s", "250ms". */
char *cli_format_duration(uint64_t ms, char *buf, size_t len);

/*
 * Write all of len bytes to a blocking fd (stdout), retrying on EINTR and
 * short writes.  0 or -errno (-EPIPE when the reader went away).
 */
int cli_write_all(int fd, const void *p, size_t len);

/* Subcommands. */
int cmd_resolve(int argc, char **argv);
int cmd_interfaces(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_scan(int argc, char **argv);

extern const char cmd_resolve_help[];
extern const char cmd_interfaces_help[];
extern const char cmd_connect_help[];
extern const char cmd_send_help[];
extern const char cmd_get_help[];
extern const char cmd_serve_help[];
extern const char cmd_bench_help[];
extern const char cmd_relay_help[];
extern const char cmd_listen_help[];
extern const char cmd_scan_help[];

#endif /* TK_CLI_H */
