/* bench_merge.c: `tcpkit bench merge FILE...`: the --json documents of many
 * generators merged into one run's report, exactly. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_json.h"
#include "cli.h"

#define WHAT "bench merge"

/* All of fd, up to BJ_MAX_INPUT bytes: 0, -errno, or -EFBIG. */
static int
slurp(int fd, char **out, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf = malloc(cap), *p;
	ssize_t got;

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > BJ_MAX_INPUT) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			if ((p = realloc(buf, cap)) == NULL) {
				free(buf);
				return -ENOMEM;
			}
			buf = p;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return -errno;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (n > BJ_MAX_INPUT) {
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*len = n;
	return 0;
}

/*
 * Read and merge one file ("-": stdin) into (o, r); first says (o, r) is
 * still empty.  0 or an exit code, after the one line saying why.
 */
static int
merge_file(const char *path, bool first, struct bench_opts *o,
	   struct bench_result *r)
{
	struct bench_opts o2;
	struct bench_result r2;
	const char *name = strcmp(path, "-") == 0 ? "(stdin)" : path;
	char why[256], *text = NULL;
	size_t len = 0;
	int fd, err;

	fd = strcmp(path, "-") == 0 ? STDIN_FILENO
				    : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_error(WHAT, name, "%s", strerror(errno));
		return CLI_EXIT_NOINPUT;
	}
	err = slurp(fd, &text, &len);
	if (fd != STDIN_FILENO)
		close(fd);
	if (err == -EFBIG) {
		cli_error(WHAT, name,
			  "larger than %u MiB: not a bench "
			  "document",
			  BJ_MAX_INPUT >> 20);
		return CLI_EXIT_DATAERR;
	}
	if (err < 0) {
		cli_error(WHAT, name, "%s", strerror(-err));
		return err == -ENOMEM ? CLI_EXIT_OTHER : CLI_EXIT_NOINPUT;
	}
	err = bench_doc_read(text, len, first ? o : &o2, first ? r : &r2, why,
			     sizeof(why));
	free(text);
	if (err < 0) {
		cli_error(WHAT, name, "%s", why);
		return err == -ENOMEM ? CLI_EXIT_OTHER : CLI_EXIT_DATAERR;
	}
	if (first)
		return 0;
	err = bench_merge(o, r, &o2, &r2, why, sizeof(why));
	bench_result_free(&r2);
	if (err == 1)
		cli_error("warning", name, "%s (merged all the same)", why);
	else if (err < 0)
		cli_error(WHAT, name, "%s", why);
	return err == -EINVAL	? CLI_EXIT_DATAERR
	       : err == -ENOMEM ? CLI_EXIT_OTHER
				: 0;
}

int
bench_merge_main(int argc, char **argv)
{
	enum { OPT_JSON = 256 };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o;
	struct bench_result r;
	bool json = false, stdin_taken = false;
	int ch, rc = 0;

	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":h", longopts)) != -1) {
		switch (ch) {
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			return cli_help("bench");
		default:
			return cli_bad_option("bench", argv, ch);
		}
	}
	if (optind == argc)
		return cli_usage("bench", "merge needs FILE... (the --json "
					  "documents of the runs, - for "
					  "stdin)");
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "-") != 0)
			continue;
		if (stdin_taken)
			return cli_usage("bench",
					 "merge reads stdin (-) once only");
		stdin_taken = true;
	}
	memset(&r, 0, sizeof(r));
	for (int i = optind; i < argc && rc == 0; i++)
		rc = merge_file(argv[i], i == optind, &o, &r);
	if (rc == 0) {
		if (json)
			bench_report_json(stdout, &o, &r);
		else
			bench_report_text(stdout, &o, &r);
		rc = bench_flush_stdout(WHAT);
	}
	bench_result_free(&r);
	return rc;
}
