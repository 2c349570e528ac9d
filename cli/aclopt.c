/* aclopt.c: the access-list options of the commands that accept
 * connections, parsed into a struct tk_acl. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "aclopt.h"
#include "cli.h"

static const char *
opt_name(int ch)
{
	return ch == ACLOPT_ALLOW	 ? "--allow"
	       : ch == ACLOPT_DENY	 ? "--deny"
	       : ch == ACLOPT_ALLOW_FILE ? "--allow-file"
					 : "--deny-file";
}

/*
 * Add one option's rules to acl: 0, or the library's error with where
 * ("--allow-file FILE", "--allow-file FILE:LINE", "--allow") and why.
 */
static int
add_rules(struct tk_acl *acl, int ch, const char *arg, char *where,
	  size_t wherelen, char *why, size_t whylen, size_t *line)
{
	bool allow = ch == ACLOPT_ALLOW || ch == ACLOPT_ALLOW_FILE;
	enum tk_acl_kind kind = allow ? TK_ACL_ALLOW : TK_ACL_DENY;
	int err;

	*line = 0;
	if (ch == ACLOPT_ALLOW || ch == ACLOPT_DENY) {
		err = tk_acl_add(acl, kind, arg, why, whylen);
		snprintf(where, wherelen, "%s", opt_name(ch));
		return err;
	}
	err = tk_acl_add_file(acl, kind, arg, line, why, whylen);
	if (*line == 0)
		snprintf(where, wherelen, "%s %s", opt_name(ch), arg);
	else
		snprintf(where, wherelen, "%s %s:%zu", opt_name(ch), arg,
			 *line);
	return err;
}

int
aclopt_take(const char *cmd, struct aclopt *o, int ch, const char *arg)
{
	struct aclopt_rule *r;
	char why[TK_ACL_ERRLEN], where[512];
	size_t line;
	int err;

	if (o->acl == NULL && (err = tk_acl_new(&o->acl)) < 0)
		return cli_fail(cmd, "", err);
	/* Kept in order, for a reload to read the files again. */
	r = realloc(o->rules, (o->n + 1) * sizeof(*r));
	if (r == NULL)
		return cli_fail(cmd, "", -ENOMEM);
	o->rules = r;
	o->rules[o->n].ch = ch;
	o->rules[o->n].arg = arg;
	o->n++;
	if (ch == ACLOPT_ALLOW_FILE || ch == ACLOPT_DENY_FILE)
		o->nfiles++;
	err = add_rules(o->acl, ch, arg, where, sizeof(where), why, sizeof(why),
			&line);
	if (err == 0)
		return 0;
	if (err == -ENOMEM)
		return cli_fail(cmd, "", err);
	if (line == 0 && (ch == ACLOPT_ALLOW_FILE || ch == ACLOPT_DENY_FILE)) {
		/* The file itself: missing, unreadable, a directory. */
		cli_error(cmd, where, "%s", why);
		return CLI_EXIT_NOINPUT;
	}
	if (line == 0)
		return cli_usage(cmd, "%s %s", where, why);
	return cli_usage(cmd, "%s: %s", where, why);
}

int
aclopt_rebuild(const struct aclopt *o, struct tk_acl **out, char *msg,
	       size_t msglen)
{
	char why[TK_ACL_ERRLEN], where[512];
	size_t line;
	int err;

	if ((err = tk_acl_new(out)) < 0) {
		snprintf(msg, msglen, "%s", tk_strerror(err));
		return err;
	}
	for (size_t i = 0; i < o->n; i++) {
		err = add_rules(*out, o->rules[i].ch, o->rules[i].arg, where,
				sizeof(where), why, sizeof(why), &line);
		if (err < 0) {
			snprintf(msg, msglen, "%s: %s", where,
				 err == -ENOMEM ? tk_strerror(err) : why);
			tk_acl_free(*out);
			*out = NULL;
			return err;
		}
	}
	return 0;
}

void
aclopt_free(struct aclopt *o)
{
	tk_acl_free(o->acl);
	o->acl = NULL;
	free(o->rules);
	o->rules = NULL;
	o->n = o->nfiles = 0;
}
