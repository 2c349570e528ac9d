/* unixopt.c: the options of a UNIX socket's file (--mode, --owner,
 * --group) and the errors of listening on one, for serve and listen. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>

#include "cli.h"
#include "unixopt.h"

void
unixopt_init(struct unixopt *u)
{
	tk_unix_listen_opts_init(&u->uo);
	u->name = NULL;
}

/* --mode: octal permission bits, as chmod takes them ("0660", "600"). */
static int
parse_mode(const char *text, int *mode)
{
	size_t n = strlen(text);
	int v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (text[i] < '0' || text[i] > '7')
			return -1;
		v = v * 8 + (text[i] - '0');
	}
	if (v > 07777)
		return -1;
	*mode = v;
	return 0;
}

/* --owner USER / --group GROUP: a name, or a number. */
static int
parse_id(const char *cmd, const char *text, bool group, unsigned *id)
{
	uint64_t v;
	struct passwd *pw;
	struct group *gr;

	if (text[0] >= '0' && text[0] <= '9') {
		if (cli_parse_uint(cmd, group ? "--group" : "--owner", text, 0,
				   0xfffffffe, &v) < 0)
			return CLI_EXIT_USAGE;
		*id = (unsigned)v;
		return 0;
	}
	if (group && (gr = getgrnam(text)) != NULL) {
		*id = gr->gr_gid;
		return 0;
	}
	if (!group && (pw = getpwnam(text)) != NULL) {
		*id = pw->pw_uid;
		return 0;
	}
	return cli_usage(cmd, "%s '%s': no such %s",
			 group ? "--group" : "--owner", text,
			 group ? "group" : "user");
}

int
unixopt_take(const char *cmd, struct unixopt *u, int ch, const char *arg)
{
	unsigned id = 0;
	int rc;

	if (ch == UNIXOPT_MODE) {
		if (parse_mode(arg, &u->uo.mode) < 0)
			return cli_usage(cmd,
					 "--mode is octal permission bits "
					 "(0660, 600), not '%s'",
					 arg);
		if (u->name == NULL)
			u->name = "--mode";
		return 0;
	}
	if ((rc = parse_id(cmd, arg, ch == UNIXOPT_GROUP, &id)) != 0)
		return rc;
	if (ch == UNIXOPT_GROUP)
		u->uo.group = (gid_t)id;
	else
		u->uo.owner = (uid_t)id;
	if (u->name == NULL)
		u->name = ch == UNIXOPT_GROUP ? "--group" : "--owner";
	return 0;
}

int
unixopt_check(const char *cmd, const struct unixopt *u, size_t nunix,
	      bool abstract, const char *hint)
{
	if (u->name != NULL && nunix == 0)
		return cli_usage(cmd, "%s is for a UNIX socket's file: %s",
				 u->name, hint);
	if (u->name != NULL && abstract)
		return cli_usage(cmd,
				 "%s: an abstract unix:@NAME has no file, no "
				 "mode and no owner",
				 u->name);
	return 0;
}

int
unixopt_listen_error(const struct unixopt *u, const char *where, int err)
{
	switch (err) {
	case -EADDRINUSE:
		cli_error("listen", where,
			  "in use: a server is listening on this socket");
		break;
	case -EEXIST:
		cli_error("listen", where,
			  "not a socket: the file is left alone; choose "
			  "another path");
		break;
	case -EPERM:
		if (u != NULL && u->name != NULL) {
			cli_error("listen", where,
				  "%s: %s (an owner needs root; a group, one "
				  "of yours)",
				  u->name, tk_strerror(err));
			break;
		}
		/* fall through */
	default:
		cli_fail("listen", where, err);
	}
	return CLI_EXIT_OTHER;
}
