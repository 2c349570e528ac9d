/* endpoint_connect.c: connecting to a parsed endpoint, whatever its kind. */
#include <errno.h>

#include "internal.h"

int
tk_conn_connect_endpoint(struct tk_loop *loop, const struct tk_endpoint *ep,
			 const struct tk_conn_opts *opts,
			 const struct tk_service *svc, void *arg,
			 struct tk_conn **out)
{
	struct tk_addrlist list;
	struct tk_addr a;
	int err;

	if (ep == NULL)
		return -EINVAL;
	switch (ep->kind) {
	case TK_EP_TLS:
		/* The context is the caller's to build: none, no TLS. */
		if (opts == NULL || opts->tls == NULL)
			return -EINVAL;
		/* fall through */
	case TK_EP_TCP:
		return tk_conn_connect_host(loop, ep->host, ep->port, opts, svc,
					    arg, out);
	case TK_EP_UNIX:
		err = tk_addr_from_unix(ep->path, ep->path_len, ep->abstract,
					&a);
		if (err < 0)
			return err;
		list.count = 1;
		list.addrs = &a;
		return tk_conn_connect(loop, &list, opts, svc, arg, out);
	default:
		return -EINVAL;
	}
}
