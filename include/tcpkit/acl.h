/* tcpkit/acl.h: access lists: which peer addresses a server accepts. */
#ifndef TCPKIT_ACL_H
#define TCPKIT_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * An access list holds CIDR rules of two kinds, allow and deny, for IPv4
 * and IPv6 ("10.0.0.0/8", "::1/128"; a bare address is /32 or /128).  The
 * verdict for a peer, as ncat's --allow/--deny:
 *
 *   1. a peer that matches any deny rule is refused;
 *   2. else, if the allow list is on, a peer that matches no allow rule is
 *      refused;
 *   3. else it is accepted.
 *
 * The allow list is on once an allow rule is added, or an allow file is
 * read, even an empty one (an empty allow file refuses everyone rather
 * than opening the door).  An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) is
 * matched as the IPv4 address a.b.c.d, and a rule written that way
 * ("::ffff:10.0.0.0/104") is stored as the IPv4 rule it means.  Rules are
 * addresses only: no names are looked up.  A peer that is neither IPv4 nor
 * IPv6 (a UNIX socket) is not subject to the lists: it is accepted.
 *
 * Cost: the rules are kept sorted, and a lookup is one binary search per
 * prefix length in use (at most 33 for IPv4, 129 for IPv6), so a file of
 * thousands of rules costs a few dozen comparisons per accept.  A list
 * holds at most TK_ACL_MAX_RULES rules in all (about 1.5 MB); more is
 * -ENOSPC.
 *
 * A list is built on one thread, then only read: a server's workers share
 * it without locks, so it must not change while a server uses it.  The
 * server holds a reference of its own (tcpkit/reload.h): tk_acl_free()
 * frees the list once the server is done with it too.
 */
#define TK_ACL_MAX_RULES 65536
/* The longest line of a rules file, newline excluded. */
#define TK_ACL_MAX_LINE 255
/* The longest message the parsers write to why, with its NUL. */
#define TK_ACL_ERRLEN 128

struct tk_acl;

enum tk_acl_kind {
	TK_ACL_DENY,
	TK_ACL_ALLOW,
};

/* One rule: the network (host bits cleared) and its prefix length. */
struct tk_acl_rule {
	int family;	  /* AF_INET or AF_INET6 */
	unsigned prefix;  /* 0..32 or 0..128 */
	uint8_t addr[16]; /* network byte order; IPv4 in the first 4 */
};

/*
 * Parse one rule: "ADDR" or "ADDR/PREFIX", no spaces, no scope ("%eth0").
 * Host bits beyond the prefix are cleared ("10.1.2.3/8" is 10.0.0.0/8).
 * Pure.  0, or TK_EBADADDR with a one-line reason in why (optional):
 * "'10.0.0.0/33': prefix longer than 32".
 */
int tk_acl_rule_parse(const char *text, struct tk_acl_rule *rule, char *why,
		      size_t whylen);
/* Does addr (IPv4, IPv6 or IPv4-mapped IPv6) fall in rule's network? */
bool tk_acl_rule_match(const struct tk_acl_rule *rule,
		       const struct tk_addr *addr);

/* A new, empty list (accepts everyone) in *out: 0 or -ENOMEM. */
int tk_acl_new(struct tk_acl **out);
void tk_acl_free(struct tk_acl *acl);
/*
 * Add one rule (tk_acl_rule_parse()) to the allow or deny list: 0,
 * TK_EBADADDR (why says what), -ENOSPC past TK_ACL_MAX_RULES, -ENOMEM.
 */
int tk_acl_add(struct tk_acl *acl, enum tk_acl_kind kind, const char *text,
	       char *why, size_t whylen);
/*
 * Add every rule of a file: one per line, surrounding blanks ignored, '#'
 * starts a comment, blank lines skipped.  0; -errno when the file cannot
 * be opened or read (-ENOENT...); TK_EBADADDR, -ENOSPC, or TK_ETOOBIG for
 * a line over TK_ACL_MAX_LINE, with *line (optional) set to the line at
 * fault (1-based; 0 for an open or read error) and why saying what.  On
 * an error, rules of the lines before it stay added.
 */
int tk_acl_add_file(struct tk_acl *acl, enum tk_acl_kind kind, const char *path,
		    size_t *line, char *why, size_t whylen);
/* Rules of one kind in the list. */
size_t tk_acl_count(const struct tk_acl *acl, enum tk_acl_kind kind);
/*
 * The verdict for peer: 0 accepted, TK_EDENIED refused.  A NULL acl
 * accepts everyone.
 */
int tk_acl_check(const struct tk_acl *acl, const struct tk_addr *peer);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_ACL_H */
