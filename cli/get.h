/* get.h: what cmd_get.c and get_out.c share. */
#ifndef TK_CLI_GET_H
#define TK_CLI_GET_H

#include <stdbool.h>
#include <stddef.h>

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
};

/* 0, or the error is printed and its exit code (73) returned. */
int get_out_open(struct get_out *out, const char *path);
/* get_out_open() for command cmd (its name in the errors). */
int get_out_open_cmd(struct get_out *out, const char *path, const char *cmd);
/* fsync, close, rename.  0, or printed and 74; the temp file is gone. */
int get_out_commit(struct get_out *out);
/* Remove the temporary file; FILE is untouched. */
void get_out_discard(struct get_out *out);

#endif
