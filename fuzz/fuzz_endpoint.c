/* fuzz_endpoint.c: libFuzzer harness for tk_endpoint_parse(),
 * tk_endpoint_format() and tk_exec_split(). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "check failed: %s\n", what);
		abort();
	}
}

#define ALL                                                                    \
	(TK_EP_ALLOW_STDIO | TK_EP_ALLOW_EXEC | TK_EP_ALLOW_UNIX |             \
	 TK_EP_ALLOW_TLS | TK_EP_ALLOW_UDP)

/*
 * Besides not crashing: only the documented code; a reason on every
 * failure, one line; fields within their bounds; what parses formats to
 * text that parses back to the same endpoint; exec: words fit the buffer
 * they were split into.  The first byte picks the flags.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tk_endpoint ep, again;
	char why[96], text2[512], words[256], *argv[16];
	unsigned flags;
	char *text;
	int err, n;

	if (size == 0)
		return 0;
	flags = data[0] & (TK_EP_PASSIVE | ALL);
	/* The parser takes a C string: an exact-size copy, so ASan sees
	 * overreads. */
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';

	err = tk_endpoint_parse(text, flags, &ep, why, sizeof(why));
	check(err == 0 || err == TK_EBADENDPOINT, "documented code");
	if (err != 0) {
		check(why[0] != '\0', "a reason");
		check(strchr(why, '\n') == NULL, "one line");
		goto out;
	}
	switch (ep.kind) {
	case TK_EP_TCP:
	case TK_EP_TLS:
	case TK_EP_UDP:
		check(strlen(ep.host) < TK_HOSTLEN &&
			      strlen(ep.port) < TK_PORTLEN &&
			      ep.port[0] != '\0',
		      "host and port fit");
		check(ep.host[0] != '\0' || (flags & TK_EP_PASSIVE),
		      "active has a host");
		check(ep.kind != TK_EP_TLS || (flags & TK_EP_ALLOW_TLS),
		      "tls allowed");
		check(ep.kind != TK_EP_UDP || (flags & TK_EP_ALLOW_UDP),
		      "udp allowed");
		break;
	case TK_EP_UNIX:
		check((flags & TK_EP_ALLOW_UNIX) && ep.path_len > 0 &&
			      ep.path_len <= TK_UNIX_PATHLEN &&
			      strlen(ep.path) == ep.path_len,
		      "unix path");
		break;
	case TK_EP_STDIO:
		check(flags & TK_EP_ALLOW_STDIO, "stdio allowed");
		break;
	case TK_EP_EXEC:
	case TK_EP_SH:
		check((flags & TK_EP_ALLOW_EXEC) && ep.command >= text &&
			      ep.command <= text + size - 1,
		      "command borrowed from the text");
		n = tk_exec_split(ep.command, words, sizeof(words), argv, 16,
				  why, sizeof(why));
		check(n > 0 || n == TK_EBADENDPOINT || n == -E2BIG,
		      "split codes");
		for (int i = 0; i > -1 && i < n; i++)
			check(argv[i] >= words && argv[i] + strlen(argv[i]) <
							  words + sizeof(words),
			      "word inside the buffer");
		if (n > 0)
			check(argv[n] == NULL, "argv ends with NULL");
		break;
	default:
		check(0, "a known kind");
	}

	/* Round trip, where the format is the whole text (not exec/sh, whose
	 * command may hold anything). */
	if (ep.kind != TK_EP_EXEC && ep.kind != TK_EP_SH &&
	    strlen(tk_endpoint_format(&ep, text2, sizeof(text2))) + 1 <
		    sizeof(text2)) {
		err = tk_endpoint_parse(text2, flags, &again, why, sizeof(why));
		check(err == 0, "formatted text parses");
		check(again.kind == ep.kind &&
			      strcmp(again.host, ep.host) == 0 &&
			      strcmp(again.port, ep.port) == 0 &&
			      again.path_len == ep.path_len &&
			      memcmp(again.path, ep.path, ep.path_len) == 0 &&
			      again.abstract == ep.abstract &&
			      again.wildcard == ep.wildcard,
		      "round trip");
	}
out:
	free(text);
	return 0;
}
