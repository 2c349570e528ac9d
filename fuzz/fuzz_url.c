/* fuzz_url.c: libFuzzer harness for tk_url_parse() and tk_url_resolve(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() vanishes under NDEBUG (release builds); this never does. */
#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #x);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

static void
check_span(struct tk_span sp, size_t len)
{
	CHECK(sp.off <= len && sp.len <= len - sp.off);
}

/*
 * The input as a Location against a fixed base: an answer within bounds
 * and NUL-terminated, the base's scheme and authority kept unless the
 * reference names its own, and no dot segment left in a merged path.
 */
static void
check_resolve(const uint8_t *data, size_t size)
{
	static const char base[] = "http://h:8/a/b/c?q";
	char ref[512], out[256];
	size_t n = size < sizeof(ref) - 1 ? size : sizeof(ref) - 1, plen;
	ssize_t rc;

	memcpy(ref, data, n);
	ref[n] = '\0';
	rc = tk_url_resolve(base, ref, out, sizeof(out));
	if (rc < 0) {
		CHECK(rc == TK_EBADURL || rc == TK_ETOOBIG);
		return;
	}
	CHECK((size_t)rc < sizeof(out) && out[rc] == '\0');
	CHECK(strlen(out) == (size_t)rc);
	CHECK(strchr(out, '#') == NULL);
	if (strchr(ref, ':') == NULL && strncmp(ref, "//", 2) != 0) {
		CHECK(strncmp(out, "http://h:8/", 11) == 0);
		plen = strcspn(out + 10, "?");
		CHECK(memmem(out + 10, plen, "/./", 3) == NULL);
		CHECK(memmem(out + 10, plen, "/../", 4) == NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t = (const char *)data;
	struct tk_url u, v;
	size_t i;
	int rc;

	check_resolve(data, size);
	rc = tk_url_parse(t, size, &u);
	if (rc != 0) {
		CHECK(rc == TK_EBADURL);
		return 0;
	}
	check_span(u.scheme, size);
	check_span(u.host, size);
	check_span(u.port, size);
	check_span(u.target, size);

	/* What was promised about each part. */
	CHECK(u.scheme.off == 0 && u.scheme.len > 0);
	CHECK(u.host.len > 0 && u.host.len < TK_HOSTLEN);
	for (i = 0; i < size; i++)
		CHECK(data[i] > 0x20 && data[i] < 0x7f);
	CHECK(memcmp(t + u.scheme.len, "://", 3) == 0);
	for (i = 0; i < u.port.len; i++)
		CHECK(t[u.port.off + i] >= '0' && t[u.port.off + i] <= '9');
	if (u.target.len > 0)
		CHECK(t[u.target.off] == '/' || t[u.target.off] == '?');
	CHECK(memchr(t + u.target.off, '#', u.target.len) == NULL);
	CHECK(memchr(t + u.host.off, '@', u.host.len) == NULL);
	if (u.host_is_ipv6)
		CHECK(u.host.off > 0 && t[u.host.off - 1] == '[' &&
		      t[u.host.off + u.host.len] == ']');

	/* Deterministic, and the target ends the text or meets a '#'. */
	CHECK(tk_url_parse(t, size, &v) == 0);
	CHECK(memcmp(&u, &v, sizeof(u)) == 0);
	i = u.target.off + u.target.len;
	CHECK(i == size || t[i] == '#');
	return 0;
}
