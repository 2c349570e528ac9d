/* fuzz_proxyproto.c: libFuzzer harness for the PROXY protocol parser and
 * formatter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "check failed: %s\n", #cond);          \
			abort();                                               \
		}                                                              \
	} while (0)

static bool
same(const struct tk_pp_header *a, const struct tk_pp_header *b)
{
	return a->version == b->version && a->command == b->command &&
	       a->family == b->family && a->src.len == b->src.len &&
	       a->dst.len == b->dst.len &&
	       memcmp(&a->src.u, &b->src.u, sizeof(a->src.u)) == 0 &&
	       memcmp(&a->dst.u, &b->dst.u, sizeof(a->dst.u)) == 0;
}

/*
 * Besides not crashing: the answer is "more", a length within the input
 * and the bounds, or TK_EPPHEADER with a one-line reason; a prefix of a
 * complete header asks for more or fails, never finds another length; an
 * error stays one with more bytes; a complete header formats back to one
 * that parses, whole, to the same header.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tk_pp_header h, h2;
	char why[TK_PP_ERRLEN];
	unsigned char back[TK_PP_MAX];
	uint8_t *copy;
	int r, r2, n;

	/* An exact copy, so ASan sees any read past the input. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	r = tk_pp_parse(copy, size, &h, why, sizeof(why));
	CHECK(r == 0 || r == TK_EPPHEADER || (r > 0 && (size_t)r <= size));
	CHECK(r <= TK_PP_MAX);
	if (r == 0)
		CHECK(size < TK_PP_MAX);
	if (r < 0)
		CHECK(why[0] != '\0' && strchr(why, '\n') == NULL);
	if (r < 0 && size < 4096) {
		/* More bytes never cure a malformed beginning. */
		uint8_t *more = malloc(size + 8);

		if (more != NULL) {
			memcpy(more, copy, size);
			memset(more + size, '\n', 8);
			CHECK(tk_pp_parse(more, size + 8, &h2, NULL, 0) ==
			      TK_EPPHEADER);
			free(more);
		}
	}
	if (r > 0) {
		CHECK(h.version == 1 || h.version == 2);
		for (size_t k = 0; k < (size_t)r; k += 1 + k / 8) {
			r2 = tk_pp_parse(copy, k, &h2, NULL, 0);
			CHECK(r2 == 0 || r2 == TK_EPPHEADER);
		}
		n = tk_pp_format_header(&h, back, sizeof(back));
		CHECK(n > 0 && n <= TK_PP_MAX);
		r2 = tk_pp_parse(back, (size_t)n, &h2, why, sizeof(why));
		CHECK(r2 == n);
		CHECK(same(&h, &h2));
	}
	free(copy);
	return 0;
}
