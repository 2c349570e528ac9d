/* ppopt.c: the PROXY protocol options: who may send a header to our
 * servers, and sending one ourselves. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "ppopt.h"

/* Each CIDR of a comma-separated list, as an allow rule. */
static int
take_from(const char *cmd, struct ppopt *o, const char *arg)
{
	char buf[512], why[TK_ACL_ERRLEN], *save = NULL;
	size_t n = 0;
	int err;

	if (strlen(arg) >= sizeof(buf) || arg[0] == '\0')
		return cli_usage(cmd,
				 "--proxy-protocol-from '%s': a CIDR list "
				 "of up to %zu bytes",
				 arg, sizeof(buf) - 1);
	if (o->from == NULL && (err = tk_acl_new(&o->from)) < 0)
		return cli_fail(cmd, "", err);
	strcpy(buf, arg);
	for (char *r = strtok_r(buf, ",", &save); r != NULL;
	     r = strtok_r(NULL, ",", &save), n++)
		if (tk_acl_add(o->from, TK_ACL_ALLOW, r, why, sizeof(why)) < 0)
			return cli_usage(cmd, "--proxy-protocol-from %s", why);
	/* An access list without an allow rule allows everyone. */
	if (n == 0)
		return cli_usage(
			cmd, "--proxy-protocol-from '%s': no CIDR in it", arg);
	return 0;
}

int
ppopt_take(const char *cmd, struct ppopt *o, int ch, const char *arg)
{
	switch (ch) {
	case PPOPT_ON:
		o->on = true;
		return 0;
	case PPOPT_FROM:
		o->on = true;
		return take_from(cmd, o, arg);
	default:
		if (strcmp(arg, "v1") == 0 || strcmp(arg, "1") == 0)
			o->send = 1;
		else if (strcmp(arg, "v2") == 0 || strcmp(arg, "2") == 0)
			o->send = 2;
		else
			return cli_usage(cmd, "--send-proxy '%s': v1 or v2",
					 arg);
		return 0;
	}
}

int
ppopt_check(const char *cmd, const struct ppopt *o)
{
	if (o->on && o->from == NULL)
		return cli_usage(cmd,
				 "--proxy-protocol needs --proxy-protocol-from "
				 "CIDR: whose headers to believe must be said");
	return 0;
}

void
ppopt_apply(const struct ppopt *o, struct tk_server_opts *so)
{
	so->proxy_protocol = o->on;
	so->proxy_from = o->from;
}

void
ppopt_free(struct ppopt *o)
{
	tk_acl_free(o->from);
	o->from = NULL;
}

bool
ppopt_is_refusal(int err)
{
	return err != -EUSERS && err != TK_EDENIED;
}

const char *
ppopt_why(int err)
{
	switch (err) {
	case TK_EPPHEADER:
		return "no valid PROXY protocol header";
	case TK_EPPUNTRUSTED:
		return "not in --proxy-protocol-from, no PROXY header believed";
	case TK_ETIMEDOUT:
		return "no PROXY protocol header in time";
	case TK_ETRUNCATED:
		return "closed before its PROXY protocol header ended";
	default:
		return tk_strerror(err);
	}
}

int
ppopt_send(int version, struct tk_conn *c, const struct tk_addr *src,
	   const struct tk_addr *dst)
{
	unsigned char hdr[TK_PP_MAX];
	int n = tk_pp_format(version, src, dst, hdr, sizeof(hdr));

	return n < 0 ? n : tk_conn_write(c, hdr, (size_t)n);
}
