/* fuzz_addr.c: libFuzzer harness for tk_hostport_split(), tk_addr_parse()
 * and UNIX names (tk_addr_from_unix(), tk_addr_format()). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Besides not crashing: results stay within the documented codes and
 * bounds, and whatever parses formats to text that parses back to the same
 * address.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[TK_HOSTLEN], port[TK_PORTLEN], buf[TK_ADDRSTRLEN];
	struct tk_addr a, b;
	uint16_t pn;
	char *text;
	int err;

	/* The parsers take C strings: an exact-size copy, so ASan sees
	 * overreads. */
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	err = tk_hostport_split(text, host, port);
	if (err != 0 && err != TK_EBADADDR && err != TK_EBADPORT)
		abort();
	if (err == 0 &&
	    (strlen(host) >= TK_HOSTLEN || strlen(port) >= TK_PORTLEN ||
	     (host[0] == '\0' && port[0] == '\0')))
		abort();

	err = tk_port_parse(text, &pn);
	if (err != 0 && err != TK_EBADPORT)
		abort();

	err = tk_addr_parse(text, 4242, &a);
	if (err != 0 && err != TK_EBADADDR && err != TK_EBADPORT)
		abort();
	if (err == 0) {
		if (tk_addr_family(&a) != AF_INET &&
		    tk_addr_family(&a) != AF_INET6)
			abort();
		tk_addr_format(&a, buf, sizeof(buf));
		if (strlen(buf) >= sizeof(buf) - 1)
			abort();
		if (tk_addr_parse(buf, 1, &b) != 0 || !tk_addr_equal(&a, &b))
			abort();
	}

	/*
	 * The input as a UNIX name: up to 107 bytes fit, each formats to
	 * at most four ("\xNN"), so the text always fits TK_ADDRSTRLEN.
	 */
	for (int abstract = 0; abstract <= 1; abstract++) {
		err = tk_addr_from_unix((const char *)data, size, abstract, &a);
		if (err != 0 && err != TK_EBADADDR && err != -ENAMETOOLONG)
			abort();
		/* Too long is told unless the bytes are refused first. */
		if ((err == -ENAMETOOLONG && size <= 107) ||
		    (err == 0 && size > 107))
			abort();
		if (err != 0)
			continue;
		tk_addr_format(&a, buf, sizeof(buf));
		if (strlen(buf) > 6 + 4 * size ||
		    strncmp(buf, abstract ? "unix:@" : "unix:", 5 + abstract))
			abort();
		if (!tk_addr_equal(&a, &a) || !tk_addr_is_loopback(&a))
			abort();
	}
	free(text);
	return 0;
}
