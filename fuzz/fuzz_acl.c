/* fuzz_acl.c: libFuzzer harness for tk_acl_rule_parse() and rule matching. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Besides not crashing: a rule parses or is refused with TK_EBADADDR and a
 * reason; a parsed rule has a prefix within its family's bounds, no host
 * bit set, matches its own network address, and formats back to text
 * that parses to the same rule.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[TK_ACL_ERRLEN], back[INET6_ADDRSTRLEN + 8];
	struct tk_acl_rule r, r2;
	struct tk_addr a;
	char *text;
	int err;

	/* A C string of exactly the input, so ASan sees overreads. */
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	why[0] = '\0';
	err = tk_acl_rule_parse(text, &r, why, sizeof(why));
	if (err != 0 && (err != TK_EBADADDR || why[0] == '\0'))
		abort();
	if (err == 0) {
		unsigned max = r.family == AF_INET ? 32 : 128;
		size_t n = 0;

		if ((r.family != AF_INET && r.family != AF_INET6) ||
		    r.prefix > max)
			abort();
		memset(&a, 0, sizeof(a));
		if (r.family == AF_INET) {
			a.u.in4.sin_family = AF_INET;
			memcpy(&a.u.in4.sin_addr, r.addr, 4);
			a.len = sizeof(a.u.in4);
		} else {
			a.u.in6.sin6_family = AF_INET6;
			memcpy(&a.u.in6.sin6_addr, r.addr, 16);
			a.len = sizeof(a.u.in6);
		}
		/*
		 * An IPv6 network that looks IPv4-mapped ("::ffff:0:0/80")
		 * is the one rule its own address does not match: that
		 * address is taken as the IPv4 peer it stands for.
		 */
		if (!tk_acl_rule_match(&r, &a) &&
		    !(r.family == AF_INET6 && r.addr[10] == 0xff &&
		      r.addr[11] == 0xff &&
		      memcmp(r.addr, "\0\0\0\0\0\0\0\0\0\0", 10) == 0))
			abort();
		inet_ntop(r.family, r.addr, back, sizeof(back));
		n = strlen(back);
		back[n++] = '/';
		if (r.prefix >= 100)
			back[n++] = (char)('0' + r.prefix / 100);
		if (r.prefix >= 10)
			back[n++] = (char)('0' + r.prefix / 10 % 10);
		back[n++] = (char)('0' + r.prefix % 10);
		back[n] = '\0';
		if (tk_acl_rule_parse(back, &r2, NULL, 0) != 0 ||
		    r2.family != r.family || r2.prefix != r.prefix ||
		    memcmp(r2.addr, r.addr, 16) != 0)
			abort();
	}
	free(text);
	return 0;
}
