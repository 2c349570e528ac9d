/* tcpkit/reload.h: changing a running server's TLS context and access list
 * (part of tcpkit.h; include that). */
#ifndef TCPKIT_RELOAD_H
#define TCPKIT_RELOAD_H

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * A server's certificate and access list can change while it runs (a
 * program's SIGHUP), without dropping a connection: connections already
 * open keep the context they began with; those accepted after the change
 * get the new one.  The list is checked at accept only, so an open
 * connection from an address the new list refuses is not cut.
 *
 * Ownership.  The server holds its own reference to the context and the
 * list it uses, those of tk_server_opts included: the caller may free
 * theirs (tk_tls_ctx_free(), tk_acl_free()) whenever it likes, even while
 * the server runs.  Every TLS connection holds one more to its context,
 * which is really freed with the last of them, on whichever thread.  A
 * list must not change once given to a server: build a new one.
 *
 * Threads: call these on the owner's thread (the loop given to
 * tk_server_new()).  The change is posted to every worker's loop
 * (tk_loop_post()); each worker takes it at the start of its next round,
 * and the server lets the old one go once the last worker has: a client
 * accepted by a busy worker just after the call may still get the old
 * one.  With one worker (or none running) the change is made at once.
 * tk_server_get_opts() tells the newest at once, on the owner's thread.
 *
 * Both return 0, or -ENOMEM with nothing changed.  tk_server_set_tls()
 * returns -EINVAL for a NULL ctx on a TLS server or a ctx on a plain one:
 * clients expect one or the other.  acl NULL: accept everyone.
 */
struct tk_server;
struct tk_tls_ctx;
struct tk_acl;

int tk_server_set_tls(struct tk_server *s, struct tk_tls_ctx *ctx);
int tk_server_set_acl(struct tk_server *s, const struct tk_acl *acl);

/*
 * What a context's own certificate says, to tell which one a reload put
 * in place: subject, issuer, validity and sha256 of struct tk_tls_info
 * (the session fields stay empty).  0, or -ENOENT for a context without a
 * certificate (a client's without --cert).
 */
struct tk_tls_info;
int tk_tls_ctx_cert_info(const struct tk_tls_ctx *ctx,
			 struct tk_tls_info *info);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_RELOAD_H */
