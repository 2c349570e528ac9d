/* bench.h: `tcpkit bench`'s command line and its reports of an engine's
 * run. */
#ifndef TK_CLI_BENCH_H
#define TK_CLI_BENCH_H

#include <stdio.h>

#include "bench_doc.h"
#include "bench_engine.h"

/*
 * The command line (bench_opts.c): 0, -1 after printing the help, or an
 * exit code after a usage error.  o->tls and o->message are the caller's
 * to free, whatever it returns.
 */
int bench_parse_args(int argc, char **argv, struct bench_opts *o);

/*
 * --start-at TIME (bench_start.c): RFC 3339 or Unix time, at most a day
 * ahead, as Unix time in ns.  0, or CLI_EXIT_USAGE after the error.
 */
int bench_parse_start_at(const char *text, uint64_t *ns);

/* tcpkit bench merge FILE... (bench_merge.c); returns the exit code. */
int bench_merge_main(int argc, char **argv);

/* Reports (bench_report.c).  Each writes to f; the SVG and CSV are files. */
void bench_report_text(FILE *f, const struct bench_opts *o,
		       const struct bench_result *r);
/*
 * stdout flushed after a report: 0, or exit 1 after the line saying the
 * write failed (what: "bench", "bench merge").  A report lost to a full
 * disk or a closed pipe must not pass as a run done.
 */
int bench_flush_stdout(const char *what);
void bench_report_json(FILE *f, const struct bench_opts *o,
		       const struct bench_result *r);
void bench_report_csv(FILE *f, const struct bench_result *r);
void bench_report_svg(FILE *f, const struct bench_opts *o,
		      const struct bench_result *r);
/* bench echo -u (bench_udp.c): run and report; returns the exit code. */
int bench_udp_run(const struct bench_opts *o, const struct tk_addrlist *addrs);

/* Unix time in us as RFC 3339 UTC: "2026-12-03T16:30:00.123456Z". */
char *bench_format_time(uint64_t us, char *buf, size_t len);

/*
 * Parts of the --json document, for bench -u's too: the measured window
 * (RFC 3339 and Unix time, us) and the whole latency histogram, each as
 * ", "-led members of the object being written.
 */
void bench_json_window(FILE *f, uint64_t start_us, uint64_t end_us);
void bench_json_histogram(FILE *f, const struct tk_hist *h);

/* "12.3us", "1.52ms", "2.00s" for a latency in ns. */
char *bench_format_ns(uint64_t ns, char *buf, size_t len);

#endif /* TK_CLI_BENCH_H */
