/* aclopt.h: --allow, --deny, --allow-file, --deny-file, shared by the
 * commands that accept connections (serve, listen, relay). */
#ifndef TK_CLI_ACLOPT_H
#define TK_CLI_ACLOPT_H

#include "tcpkit.h"

/* getopt values, clear of the other shared option sets (tlsopt: 0x1000). */
enum {
	ACLOPT_ALLOW = 0x1100,
	ACLOPT_DENY,
	ACLOPT_ALLOW_FILE,
	ACLOPT_DENY_FILE,
};

#define ACLOPT_LONGOPTS                                                        \
	{ "allow", required_argument, NULL, ACLOPT_ALLOW },                    \
		{ "deny", required_argument, NULL, ACLOPT_DENY },              \
		{ "allow-file", required_argument, NULL, ACLOPT_ALLOW_FILE },  \
	{                                                                      \
		"deny-file", required_argument, NULL, ACLOPT_DENY_FILE         \
	}

/* The options' lines of a command's help (for `tcpkit help CMD`). */
#define ACLOPT_HELP                                                              \
	"Access (checked right after accept, before any byte is read or sent;\n" \
	"a refused client is closed at once and logged 'denied ADDR'):\n"        \
	"      --allow CIDR    accept only clients in CIDR (10.0.0.0/8,\n"       \
	"                      ::1/128; an address alone is /32 or /128);\n"     \
	"                      repeatable\n"                                     \
	"      --deny CIDR     refuse clients in CIDR; repeatable; a deny\n"     \
	"                      wins over an allow\n"                             \
	"      --allow-file FILE\n"                                              \
	"      --deny-file FILE\n"                                               \
	"                      the same, one rule per line ('#' comments);\n"    \
	"                      an empty --allow-file refuses everyone\n"

struct aclopt_rule {
	int ch;		 /* ACLOPT_* */
	const char *arg; /* the option's argument (argv's) */
};

struct aclopt {
	struct tk_acl *acl;	   /* NULL until an option is given */
	struct aclopt_rule *rules; /* every option, in order */
	size_t n, nfiles;	   /* how many; of them files */
};

/*
 * Take one of the options (ch one of ACLOPT_*): 0, or an exit code after
 * printing the error: usage (64) for a bad rule, naming the option and,
 * for a file, FILE:LINE; 66 for a file that cannot be read.
 */
int aclopt_take(const char *cmd, struct aclopt *o, int ch, const char *arg);
/*
 * A new list from the same options, the files read again (a reload):
 * 0, or an error with msg saying where and why ("--allow-file F:3:
 * '10.0.0.0/33': prefix longer than 32"), and *out NULL.
 */
int aclopt_rebuild(const struct aclopt *o, struct tk_acl **out, char *msg,
		   size_t msglen);
void aclopt_free(struct aclopt *o);

#endif /* TK_CLI_ACLOPT_H */
