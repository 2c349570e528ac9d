/* get.h: what cmd_get.c, get_args.c and get_out.c share. */
#ifndef TK_CLI_GET_H
#define TK_CLI_GET_H

#include <stdbool.h>
#include <stddef.h>

#include "tcpkit.h"
#include "tlsopt.h"

/* RFC 3986 section 3.1, after the first letter. */
#define SCHEME_CHARS                                                           \
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."

/* -H fields at most: more is not a user typing. */
#define MAX_HEADERS 64

struct get_opts {
	const char *url;
	bool include;
	bool tty_out; /* the output is a terminal: -i heads are escaped */
	bool fail;
	bool verbose;
	const char *output; /* -o FILE, or NULL: stdout */
	bool no_sync;	    /* --no-sync: -o without fsync */
	const char *headers[MAX_HEADERS + 1];
	size_t nheaders;
	struct tk_http_opts http;
	struct tlsopt tls;
	struct tk_tls_ctx *ctx;
	char *proxy_flag;    /* --proxy, or NULL: the environment's */
	const char *noproxy; /* --noproxy, or NULL: NO_PROXY's */
	bool has_proxy;	     /* the proxy below applies */
	struct tk_proxy proxy;
};

/*
 * get_args.c: parse the command line into o (the TLS options read, not
 * yet built into o->ctx).  0, -1 after printing the help, or the usage
 * error's exit code, printed.
 */
int get_parse(int argc, char **argv, struct get_opts *o);
/* Check o->url before any I/O: 0, or the exit code, printed. */
int get_check_url(const char *url);

/*
 * Bytes from the network made safe for a terminal; keep_eol keeps CR and
 * LF (a whole head).  A malloc'd string (*outlen bytes and a NUL), or NULL.
 */
char *get_escape(const char *s, size_t n, bool keep_eol, size_t *outlen);

/* -o FILE: a temporary file renamed over FILE once complete. */
struct get_out {
	const char *cmd; /* names the errors: "get", "listen" */
	int fd;
	const char *path;
	char *tmp;
	bool no_sync; /* --no-sync: rename without fsync (set after open) */
};

/* 0, or the error is printed and its exit code (73) returned. */
int get_out_open(struct get_out *out, const char *path);
/* get_out_open() for command cmd (its name in the errors). */
int get_out_open_cmd(struct get_out *out, const char *path, const char *cmd);
/* fsync (unless no_sync), close, rename.  0, or printed and 74; the temp
 * file is gone. */
int get_out_commit(struct get_out *out);
/* Remove the temporary file; FILE is untouched. */
void get_out_discard(struct get_out *out);

#endif
