/* cmd_connect.c: `tcpkit connect`: an interactive, binary-safe TCP session. */
#include <string.h>

#include "cli.h"
#include "client.h"
#include "tlsopt.h"

const char cmd_connect_help[] =
	"usage: tcpkit connect [OPTIONS] HOST PORT\n"
	"       tcpkit connect [OPTIONS] HOST:PORT\n"
	"       tcpkit connect [OPTIONS] unix:/PATH | unix:@NAME | tls://HOST:PORT\n"
	"\n"
	"Connect to HOST on PORT and copy stdin to the connection and the\n"
	"connection to stdout, byte for byte: a telnet for the terminal and a\n"
	"netcat for pipes.  Every address of HOST is tried (IPv6 and IPv4\n"
	"raced) under one connect deadline.  PORT is a number or a service\n"
	"name; IPv6 literals may be bracketed: [::1]:7007.\n"
	"\n"
	"unix:/PATH is a UNIX stream socket (unix:@NAME: an abstract one,\n"
	"Linux's, no file); -4, -6 and -s are for TCP.  tls://HOST:PORT is\n"
	"--tls with HOST:PORT.  TLS over a UNIX socket needs --servername or\n"
	"--pin: its peer has no address to check.\n"
	"\n"
	"End of input, in both directions: when stdin ends, tcpkit sends FIN\n"
	"(a half-close) and keeps printing until the peer closes.  When the\n"
	"peer half-closes first, piped or redirected stdin is still sent to\n"
	"its end, then FIN; on a terminal, tcpkit stops at once (as telnet\n"
	"does).  tcpkit exits 0 when both directions are done.\n"
	"\n"
	"Options:\n"
	"  -4, --ipv4               IPv4 addresses only\n"
	"  -6, --ipv6               IPv6 addresses only\n"
	"  -w, --connect-timeout D  give up connecting after D (default 10s)\n"
	"  -i, --idle-timeout D     exit 75 after D without data either way\n"
	"                           (default: never)\n"
	"  -m, --max-time D         exit 75 when the whole session (connect\n"
	"                           included) takes longer than D, however\n"
	"                           busy (default: no limit)\n"
	"  -s, --source ADDR        connect from this local address\n"
	"                           (ADDR or ADDR:PORT)\n"
	"      --proxy URL          go through a proxy: socks5://, socks5h://\n"
	"                           (the proxy resolves HOST), socks4a:// or\n"
	"                           http:// (CONNECT), [USER:PASSWORD@]HOST[:PORT]\n"
	"                           (port 1080 by default)\n"
	"  -C, --crlf               send stdin's line ends as CRLF\n"
	"      --no-shutdown        do not send FIN at the end of stdin\n"
	"      --send-only          do not print what the peer sends\n"
	"      --recv-only          do not read stdin (and send nothing)\n"
	"  -v, --verbose            report 'connected to ADDR:PORT' on stderr\n"
	"  -h, --help               show this help\n"
	"\n" TLSOPT_CLIENT_HELP "\n"
	"Durations: 10 or 1.5 (seconds), 250ms, 2s, 1m.\n"
	"\n"
	"Exit codes: 0 the peer closed, 64 usage (also port 0, an empty or\n"
	"over-long HOST), 66 a --cacert, --cert or --key file is missing, 68\n"
	"unknown host, 69 refused or unreachable (or reset; unix: also no\n"
	"socket at PATH; --proxy: the proxy refused the request or could not\n"
	"reach the target), 75 connect, idle, --max-time or TLS handshake\n"
	"timeout, 76 TLS failure (or the proxy's protocol broken), 77 the\n"
	"proxy refused the credentials, 1 other.\n"
	"\n"
	"Examples:\n"
	"  tcpkit connect localhost 9999            talk to a line server\n"
	"  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | tcpkit connect example.org 80\n"
	"  tcpkit connect -v -w 2 [::1]:7007 < file > copy\n"
	"  tcpkit connect --tls example.org 443\n"
	"  tcpkit connect unix:/run/app.sock        a local server's socket\n"
	"  tcpkit connect --proxy socks5h://127.0.0.1:9050 example.org 80\n";

int
cmd_connect(int argc, char **argv)
{
	struct client_opts o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.cmd = "connect";
	o.connect_timeout_ms = TK_DEFAULT_CONNECT_TIMEOUT_MS;
	rc = client_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	return client_run(&o);
}
