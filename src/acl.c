/* acl.c: access lists of CIDR rules, and the verdict for a peer address. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "tcpkit/acl.h"

/*
 * Each kind's rules are kept sorted by family, prefix, then network, and
 * which prefix lengths occur is noted: a lookup is one binary search per
 * prefix length in use (of the peer's family), so a list of thousands
 * costs a few dozen comparisons, not thousands.
 */
struct tk_acl {
	struct tk_acl_rule *rules[2]; /* by enum tk_acl_kind */
	size_t n[2], cap[2];
	bool used[2][2][129]; /* [kind][IPv6?][prefix]: some rule has it */
	bool allow_on;	      /* an allow rule or allow file was given */
	/* Its creator's, and a server's that uses it (tk__acl_ref()). */
	atomic_uint refs;
};

static int
fail(char *why, size_t whylen, const char *text, const char *reason)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "'%.64s': %s", text, reason);
	return TK_EBADADDR;
}

/* Clear the bits of a past the first prefix bits. */
static void
mask_bits(uint8_t *a, unsigned bytes, unsigned prefix)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = prefix >= 8 * (i + 1) ? 8
				: prefix <= 8 * i     ? 0
						      : prefix - 8 * i;

		a[i] &= keep == 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
}

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int
tk_acl_rule_parse(const char *text, struct tk_acl_rule *rule, char *why,
		  size_t whylen)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned max, prefix;

	memset(rule, 0, sizeof(*rule));
	if (alen == 0)
		return fail(why, whylen, text, "no address");
	if (alen >= sizeof(buf))
		return fail(why, whylen, text, "not an IP address");
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, rule->addr) == 1) {
		rule->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, rule->addr) == 1) {
		rule->family = AF_INET6;
		max = 128;
	} else {
		return fail(why, whylen, text,
			    strchr(buf, '%') != NULL
				    ? "a scope (%) is not allowed"
				    : "not an IP address");
	}
	prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1;

		if (*p == '\0')
			return fail(why, whylen, text, "no prefix after '/'");
		prefix = 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return fail(why, whylen, text,
					    "prefix is not a number");
			prefix = prefix * 10 + (unsigned)(*p - '0');
			if (prefix > max)
				return fail(why, whylen, text,
					    max == 32 ? "prefix longer than 32"
						      : "prefix longer than "
							"128");
		}
		if (p - slash > 4)
			return fail(why, whylen, text,
				    "prefix is not a number");
	}
	/* ::ffff:a.b.c.d/96+ is an IPv4 network written as IPv6. */
	if (rule->family == AF_INET6 && prefix >= 96 &&
	    memcmp(rule->addr, v4mapped, 12) == 0) {
		memmove(rule->addr, rule->addr + 12, 4);
		memset(rule->addr + 4, 0, 12);
		rule->family = AF_INET;
		prefix -= 96;
	}
	rule->prefix = prefix;
	mask_bits(rule->addr, rule->family == AF_INET ? 4 : 16, prefix);
	return 0;
}

bool
tk_acl_rule_match(const struct tk_acl_rule *rule, const struct tk_addr *addr)
{
	uint8_t a[16];
	unsigned bytes;

	if (addr->u.sa.sa_family == AF_INET) {
		memcpy(a, &addr->u.in4.sin_addr, 4);
		bytes = 4;
	} else if (addr->u.sa.sa_family == AF_INET6) {
		const uint8_t *s6 = addr->u.in6.sin6_addr.s6_addr;

		if (memcmp(s6, v4mapped, 12) == 0) {
			memcpy(a, s6 + 12, 4);
			bytes = 4;
		} else {
			memcpy(a, s6, 16);
			bytes = 16;
		}
	} else {
		return false;
	}
	if ((bytes == 4) != (rule->family == AF_INET))
		return false;
	mask_bits(a, bytes, rule->prefix);
	return memcmp(a, rule->addr, bytes) == 0;
}

int
tk_acl_new(struct tk_acl **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return -ENOMEM;
	atomic_init(&(*out)->refs, 1);
	return 0;
}

/*
 * The count is the one thing a reader may change: a list is otherwise
 * read-only once shared, hence the const cast.
 */
const struct tk_acl *
tk__acl_ref(const struct tk_acl *acl)
{
	if (acl != NULL)
		atomic_fetch_add(&((struct tk_acl *)acl)->refs, 1);
	return acl;
}

void
tk__acl_unref(const struct tk_acl *acl)
{
	tk_acl_free((struct tk_acl *)acl);
}

void
tk_acl_free(struct tk_acl *acl)
{
	if (acl == NULL || atomic_fetch_sub(&acl->refs, 1) != 1)
		return;
	free(acl->rules[0]);
	free(acl->rules[1]);
	free(acl);
}

static int
rule_cmp(const void *a, const void *b)
{
	const struct tk_acl_rule *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

/* Where r goes in the sorted rules[0..n): the first not below it. */
static size_t
lower_bound(const struct tk_acl_rule *rules, size_t n,
	    const struct tk_acl_rule *r)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rule_cmp(&rules[mid], r) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Add r: in its sorted place, or (a file's lines) at the end, the list
 * then sorted once by the caller.
 */
static int
add_rule(struct tk_acl *acl, enum tk_acl_kind kind, const struct tk_acl_rule *r,
	 bool in_place)
{
	unsigned k = kind == TK_ACL_ALLOW;

	if (acl->n[0] + acl->n[1] >= TK_ACL_MAX_RULES)
		return -ENOSPC;
	if (acl->n[k] == acl->cap[k]) {
		size_t cap = acl->cap[k] == 0 ? 8 : acl->cap[k] * 2;
		struct tk_acl_rule *p =
			realloc(acl->rules[k], cap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		acl->rules[k] = p;
		acl->cap[k] = cap;
	}
	if (in_place) {
		size_t at = lower_bound(acl->rules[k], acl->n[k], r);

		memmove(&acl->rules[k][at + 1], &acl->rules[k][at],
			(acl->n[k] - at) * sizeof(*r));
		acl->rules[k][at] = *r;
	} else {
		acl->rules[k][acl->n[k]] = *r;
	}
	acl->n[k]++;
	acl->used[k][r->family == AF_INET6][r->prefix] = true;
	if (kind == TK_ACL_ALLOW)
		acl->allow_on = true;
	return 0;
}

static int
add_text(struct tk_acl *acl, enum tk_acl_kind kind, const char *text,
	 bool in_place, char *why, size_t whylen)
{
	struct tk_acl_rule r;
	int err;

	if ((err = tk_acl_rule_parse(text, &r, why, whylen)) < 0)
		return err;
	if ((err = add_rule(acl, kind, &r, in_place)) == -ENOSPC && why != NULL)
		snprintf(why, whylen, "more than %d rules", TK_ACL_MAX_RULES);
	return err;
}

int
tk_acl_add(struct tk_acl *acl, enum tk_acl_kind kind, const char *text,
	   char *why, size_t whylen)
{
	return add_text(acl, kind, text, true, why, whylen);
}

/* One line of a rules file, trimmed and uncommented in place. */
static int
add_line(struct tk_acl *acl, enum tk_acl_kind kind, char *s, char *why,
	 size_t whylen)
{
	char *hash = strchr(s, '#'), *end;

	if (hash != NULL)
		*hash = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	if (*s == '\0')
		return 0;
	return add_text(acl, kind, s, false, why, whylen);
}

int
tk_acl_add_file(struct tk_acl *acl, enum tk_acl_kind kind, const char *path,
		size_t *line, char *why, size_t whylen)
{
	char buf[TK_ACL_MAX_LINE + 3];
	size_t n = 0;
	FILE *f;
	int err = 0;

	if (line != NULL)
		*line = 0;
	if ((f = fopen(path, "re")) == NULL) {
		err = -errno;
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "%s", strerror(-err));
		return err;
	}
	if (kind == TK_ACL_ALLOW)
		acl->allow_on = true;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		size_t len = strlen(buf);

		n++;
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len > TK_ACL_MAX_LINE) {
			err = TK_ETOOBIG;
			if (why != NULL && whylen > 0)
				snprintf(why, whylen,
					 "line longer than %d bytes",
					 TK_ACL_MAX_LINE);
			break;
		}
		if ((err = add_line(acl, kind, buf, why, whylen)) < 0)
			break;
	}
	if (err == 0 && ferror(f)) {
		err = errno != 0 ? -errno : -EIO;
		n = 0;
		if (why != NULL && whylen > 0)
			snprintf(why, whylen, "%s", strerror(-err));
	}
	if (line != NULL)
		*line = err < 0 ? n : 0;
	fclose(f);
	/* The lines before an error stay: sorted, as every list is. */
	if (acl->n[kind == TK_ACL_ALLOW] > 1)
		qsort(acl->rules[kind == TK_ACL_ALLOW],
		      acl->n[kind == TK_ACL_ALLOW], sizeof(struct tk_acl_rule),
		      rule_cmp);
	return err;
}

size_t
tk_acl_count(const struct tk_acl *acl, enum tk_acl_kind kind)
{
	return acl->n[kind == TK_ACL_ALLOW];
}

static bool
any_match(const struct tk_acl *acl, unsigned k, const struct tk_addr *peer)
{
	struct tk_acl_rule key;
	const uint8_t *s6;
	unsigned bytes, max;

	memset(&key, 0, sizeof(key));
	if (peer->u.sa.sa_family == AF_INET) {
		memcpy(key.addr, &peer->u.in4.sin_addr, 4);
		key.family = AF_INET;
	} else {
		s6 = peer->u.in6.sin6_addr.s6_addr;
		if (memcmp(s6, v4mapped, 12) == 0) {
			memcpy(key.addr, s6 + 12, 4);
			key.family = AF_INET;
		} else {
			memcpy(key.addr, s6, 16);
			key.family = AF_INET6;
		}
	}
	bytes = key.family == AF_INET ? 4 : 16;
	max = 8 * bytes;
	for (unsigned p = 0; p <= max; p++) {
		struct tk_acl_rule probe = key;
		size_t at;

		if (!acl->used[k][key.family == AF_INET6][p])
			continue;
		probe.prefix = p;
		mask_bits(probe.addr, bytes, p);
		at = lower_bound(acl->rules[k], acl->n[k], &probe);
		if (at < acl->n[k] && rule_cmp(&acl->rules[k][at], &probe) == 0)
			return true;
	}
	return false;
}

int
tk_acl_check(const struct tk_acl *acl, const struct tk_addr *peer)
{
	int fam = peer->u.sa.sa_family;

	if (acl == NULL || (fam != AF_INET && fam != AF_INET6))
		return 0;
	if (any_match(acl, 0, peer))
		return TK_EDENIED;
	if (acl->allow_on && !any_match(acl, 1, peer))
		return TK_EDENIED;
	return 0;
}
