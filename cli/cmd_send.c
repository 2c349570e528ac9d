/* cmd_send.c: `tcpkit send`: one exchange, tutorial 2's client for any server.
 */
#include <string.h>

#include "cli.h"
#include "client.h"
#include "connopt.h"
#include "tlsopt.h"

/* A server that neither answers nor closes must not hold us forever. */
#define SEND_DEFAULT_IDLE_MS 30000u

const char cmd_send_help[] =
	"usage: tcpkit send [OPTIONS] HOST PORT [MESSAGE]\n"
	"       tcpkit send [OPTIONS] HOST:PORT [MESSAGE]\n"
	"       tcpkit send [OPTIONS] unix:/PATH | unix:@NAME | tls://HOST:PORT\n"
	"                   [MESSAGE]\n"
	"\n"
	"One exchange: connect, send MESSAGE (or all of stdin when there is\n"
	"none), half-close (FIN), print everything the server sends until it\n"
	"closes, exit.  This is tutorial 2's client for any server.\n"
	"unix:/PATH and unix:@NAME are UNIX stream sockets (-4, -6 and -s\n"
	"are for TCP); tls://HOST:PORT is --tls with HOST:PORT.  TLS over a\n"
	"UNIX socket needs --servername or --pin.\n"
	"\n"
	"Options:\n"
	"  -4, --ipv4               IPv4 addresses only\n"
	"  -6, --ipv6               IPv6 addresses only\n"
	"  -w, --connect-timeout D  give up connecting after D (default 10s)\n"
	"  -i, --idle-timeout D     give up after D without data (default 30s;\n"
	"                           0 = wait forever)\n"
	"  -m, --max-time D         exit 75 when the whole session (connect\n"
	"                           included) takes longer than D, however\n"
	"                           busy (default: no limit)\n"
	"  -s, --source ADDR        connect from this local address\n"
	"  -p, --source-port PORT   connect from this local port (on -s's\n"
	"                           address, if given); a port in use is an\n"
	"                           error\n" CONNOPT_KEEPALIVE_HELP
	"      --proxy URL          go through a proxy: socks5://, socks5h://\n"
	"                           (the proxy resolves HOST), socks4a:// or\n"
	"                           http:// (CONNECT), [USER:PASSWORD@]HOST[:PORT]\n"
	"                           (port 1080 by default)\n"
	"  -C, --crlf               send line ends as CRLF\n"
	"      --newline            end MESSAGE with a newline (CRLF with -C)\n"
	"  -v, --verbose            narrate each step on stderr\n"
	"  -h, --help               show this help\n"
	"\n" TLSOPT_CLIENT_HELP "\n"
	"Exit codes: 0 the server closed, 64 usage (also port 0, an empty or\n"
	"over-long HOST), 66 a --cacert, --cert or --key file is missing, 68\n"
	"unknown host, 69 refused or unreachable (or reset; unix: also no\n"
	"socket at PATH; --proxy: the proxy refused the request or could not\n"
	"reach the target), 75 timeout, 76 TLS failure (or the proxy's\n"
	"protocol broken), 77 the proxy refused the credentials, 1 other (a\n"
	"source port in use).\n"
	"\n"
	"Examples:\n"
	"  tcpkit send 127.0.0.1 60000 'Hey!'      tutorial 2's exchange\n"
	"  printf 'GET / HTTP/1.1\\r\\n\\r\\n' | tcpkit send www.google.com 80\n"
	"  tcpkit send -v localhost 7007 hello\n"
	"  tcpkit send --tls --pin sha256:HEX localhost 7007 hello\n"
	"  tcpkit send unix:/tmp/echo.sock hello\n";

int
cmd_send(int argc, char **argv)
{
	struct client_opts o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.cmd = "send";
	o.connect_timeout_ms = TK_DEFAULT_CONNECT_TIMEOUT_MS;
	o.idle_timeout_ms = SEND_DEFAULT_IDLE_MS;
	rc = client_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	o.annotate = o.verbose;
	return client_run(&o);
}
