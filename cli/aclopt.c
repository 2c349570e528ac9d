/* aclopt.c: the access-list options of the commands that accept
 * connections, parsed into a struct tk_acl. */
#include <getopt.h>
#include <stdio.h>

#include "aclopt.h"
#include "cli.h"

int
aclopt_take(const char *cmd, struct aclopt *o, int ch, const char *arg)
{
	bool allow = ch == ACLOPT_ALLOW || ch == ACLOPT_ALLOW_FILE;
	bool file = ch == ACLOPT_ALLOW_FILE || ch == ACLOPT_DENY_FILE;
	enum tk_acl_kind kind = allow ? TK_ACL_ALLOW : TK_ACL_DENY;
	const char *opt = ch == ACLOPT_ALLOW	    ? "--allow"
			  : ch == ACLOPT_DENY	    ? "--deny"
			  : ch == ACLOPT_ALLOW_FILE ? "--allow-file"
						    : "--deny-file";
	char why[TK_ACL_ERRLEN], where[512];
	size_t line = 0;
	int err;

	if (o->acl == NULL && (err = tk_acl_new(&o->acl)) < 0)
		return cli_fail(cmd, "", err);
	if (!file) {
		err = tk_acl_add(o->acl, kind, arg, why, sizeof(why));
		if (err == 0)
			return 0;
		return cli_usage(cmd, "%s %s", opt, why);
	}
	err = tk_acl_add_file(o->acl, kind, arg, &line, why, sizeof(why));
	if (err == 0)
		return 0;
	if (line == 0) {
		/* The file itself: missing, unreadable, a directory. */
		snprintf(where, sizeof(where), "%s %s", opt, arg);
		cli_error(cmd, where, "%s", why);
		return CLI_EXIT_NOINPUT;
	}
	return cli_usage(cmd, "%s %s:%zu: %s", opt, arg, line, why);
}

void
aclopt_free(struct aclopt *o)
{
	tk_acl_free(o->acl);
	o->acl = NULL;
}
