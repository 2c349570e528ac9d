/* cmd_bench.c: `tcpkit bench`: the run, its reports, the exit code. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "tlsopt.h"

/* As many descriptors as allowed: -c connections need one each. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * With --json, a run that cannot happen still prints one JSON document on
 * stdout, with the error and the exit code, for the script that reads it.
 */
static void
json_error(const struct bench_opts *o, const char *why, int rc)
{
	const char *mode = bench_mode_name(o->mode);

	if (!o->json)
		return;
	fputs("{\"mode\": ", stdout);
	cli_json_string(stdout, mode, strlen(mode));
	fputs(", \"target\": ", stdout);
	cli_json_string(stdout, o->where, strlen(o->where));
	fputs(", \"error\": ", stdout);
	cli_json_string(stdout, why, strlen(why));
	printf(", \"exit_code\": %d}\n", rc);
	fflush(stdout);
}

/* The error on stderr (and as JSON with --json); returns rc. */
static int __attribute__((format(printf, 4, 5)))
fail(const struct bench_opts *o, const char *where, int rc, const char *fmt,
     ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cli_error("bench", where, "%s", why);
	json_error(o, why, rc);
	return rc;
}

static FILE *
open_output(const struct bench_opts *o, const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		fail(o, path, CLI_EXIT_OTHER, "%s", strerror(errno));
	return f;
}

/* Close an output file; a failed write shows here.  0 or an exit code. */
static int
close_output(FILE *f, const char *path)
{
	bool bad = ferror(f) != 0;
	int err = 0;

	if (fclose(f) != 0 || bad) {
		err = errno ? errno : EIO;
		cli_error("bench", path, "write failed: %s", strerror(err));
		return CLI_EXIT_OTHER;
	}
	return 0;
}

static int
no_connection(const struct bench_opts *o, const struct bench_result *r)
{
	char dur[32];

	int rc = r->connect_err == TK_ECONNTIMEDOUT ? CLI_EXIT_TIMEOUT
		 : cli_exit_code(r->connect_err) == CLI_EXIT_UNAVAILABLE
			 ? CLI_EXIT_UNAVAILABLE
			 : CLI_EXIT_OTHER;

	if (r->connect_err == TK_ECONNTIMEDOUT)
		return fail(o, o->where, rc,
			    "connect timed out after %s (no connection could "
			    "be established)",
			    cli_format_duration(o->connect_timeout_ms, dur,
						sizeof(dur)));
	return fail(o, o->where, rc, "%s (no connection could be established)",
		    tk_strerror(r->connect_err));
}

static int
report(const struct bench_opts *o, const struct bench_result *r, FILE *csv,
       FILE *plot)
{
	const struct bench_stats *t = &r->total;
	int rc = 0;

	if (o->json)
		bench_report_json(stdout, o, r);
	else if (!o->quiet)
		bench_report_text(stdout, o, r);
	rc = bench_flush_stdout("bench");
	if (csv != NULL) {
		bench_report_csv(csv, r);
		if (close_output(csv, o->csv_path) != 0)
			rc = CLI_EXIT_OTHER;
	}
	if (plot != NULL) {
		bench_report_svg(plot, o, r);
		if (close_output(plot, o->plot_path) != 0)
			rc = CLI_EXIT_OTHER;
	}
	/* Data that came back wrong must never pass as a good run. */
	if (t->errors[BENCH_ERR_MISMATCH] > 0) {
		cli_error("bench", o->where,
			  "%llu mismatched messages: the echo differs from "
			  "what was sent",
			  (unsigned long long)t->errors[BENCH_ERR_MISMATCH]);
		rc = CLI_EXIT_OTHER;
	}
	if (t->errors[BENCH_ERR_PROTOCOL] > 0) {
		cli_error("bench", o->where, "%llu protocol errors (first: %s)",
			  (unsigned long long)t->errors[BENCH_ERR_PROTOCOL],
			  t->first_error[BENCH_ERR_PROTOCOL]);
		rc = CLI_EXIT_OTHER;
	}
	if (t->errors[BENCH_ERR_TLS] > 0) {
		cli_error("bench", o->where,
			  "%llu TLS handshake failures (first: %s)",
			  (unsigned long long)t->errors[BENCH_ERR_TLS],
			  t->first_error[BENCH_ERR_TLS]);
		rc = cli_exit_code(r->tls_err);
	}
	return rc;
}

/* The live line on a terminal, once a second of the measured window. */
static void
on_progress(const struct bench_progress *p, void *arg)
{
	(void)arg;
	fprintf(stderr,
		"%4us  %llu %s/s  %llu connection%s open  %llu error%s\n",
		p->second, (unsigned long long)p->per_second,
		p->per_connection ? "connections" : "messages",
		(unsigned long long)p->connections_open,
		CLI_PLURAL(p->connections_open), (unsigned long long)p->errors,
		CLI_PLURAL(p->errors));
}

/* A list of one UNIX address (tk_addrlist_free() frees it). */
static int
unix_list(const struct tk_addr *a, struct tk_addrlist **out)
{
	struct tk_addrlist *l = calloc(1, sizeof(*l));

	if (l == NULL || (l->addrs = malloc(sizeof(*a))) == NULL) {
		free(l);
		return -ENOMEM;
	}
	l->addrs[0] = *a;
	l->count = 1;
	*out = l;
	return 0;
}

int
cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_result r;
	struct tk_addrlist *list = NULL;
	FILE *csv = NULL, *plot = NULL;
	int rc, err;

	/* A host named merge is written merge:PORT or merge. PORT. */
	if (argc >= 2 && strcmp(argv[1], "merge") == 0)
		return bench_merge_main(argc - 1, argv + 1);
	rc = bench_parse_args(argc, argv, &o);
	if (rc != 0) {
		tk_tls_ctx_free(o.tls);
		free(o.message);
		return rc < 0 ? 0 : rc;
	}
	if (o.is_unix)
		err = unix_list(&o.unix_addr, &list);
	else if (o.has_proxy) /* the proxy's name: the target's is its own */
		err = tk_resolve(o.proxy.host, o.proxy.port, AF_UNSPEC, 0,
				 &list);
	else
		err = tk_resolve(o.host, o.port, AF_UNSPEC, 0, &list);
	if (err == TK_EBADPORT) {
		rc = cli_usage("bench", "unknown port '%s'", o.port);
		json_error(&o, "unknown port", rc);
		goto out_free;
	}
	if (err < 0) {
		rc = fail(&o, o.where, cli_exit_code(err), "%s",
			  tk_strerror(err));
		goto out_free;
	}
	if (o.udp) {
		rc = bench_udp_run(&o, list);
		goto out_free;
	}
	/* Files first: a run is not wasted on a path that cannot be written. */
	if (o.csv_path != NULL && (csv = open_output(&o, o.csv_path)) == NULL) {
		rc = CLI_EXIT_OTHER;
		goto out_free;
	}
	if (o.plot_path != NULL &&
	    (plot = open_output(&o, o.plot_path)) == NULL) {
		rc = CLI_EXIT_OTHER;
		goto out_close;
	}
	raise_nofile();
	o.tls_why = tlsopt_why;
	if (!o.quiet && isatty(STDERR_FILENO))
		o.progress = on_progress;
	err = bench_run(&o, list, &r);
	if (err < 0) {
		rc = fail(&o, o.where, cli_exit_code(err), "%s",
			  tk_strerror(err));
		goto out_close;
	}
	/*
	 * Handshakes that failed reached the server: the report shows them
	 * even when none succeeded, with the TLS reason once on stderr.
	 */
	if (r.no_connection && r.total.errors[BENCH_ERR_TLS] == 0) {
		rc = no_connection(&o, &r);
		/* Nothing was measured: leave no empty report behind. */
		if (csv != NULL)
			unlink(o.csv_path);
		if (plot != NULL)
			unlink(o.plot_path);
	} else {
		rc = report(&o, &r, csv, plot);
		csv = plot = NULL;
	}
	bench_result_free(&r);
out_close:
	if (csv != NULL)
		fclose(csv);
	if (plot != NULL)
		fclose(plot);
out_free:
	tk_addrlist_free(list);
	tk_proxy_clear(&o.proxy);
	tk_tls_ctx_free(o.tls);
	free(o.message);
	return rc;
}
