/* cmd_connect.c: `tcpkit connect`: an interactive, binary-safe TCP session. */
#include <string.h>

#include "cli.h"
#include "client.h"
#include "connopt.h"
#include "hexdump.h"
#include "tlsopt.h"

const char cmd_connect_help[] =
	"usage: tcpkit connect [OPTIONS] HOST PORT\n"
	"       tcpkit connect [OPTIONS] HOST:PORT\n"
	"       tcpkit connect [OPTIONS] unix:/PATH | unix:@NAME | tls://HOST:PORT\n"
	"       tcpkit connect -u [OPTIONS] HOST PORT | udp://HOST:PORT\n"
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
	"UDP (-u, or udp://HOST:PORT): each line of stdin, its newline\n"
	"included, is one datagram (a line over 65,507 bytes goes in\n"
	"65,507-byte pieces; --datagram-size N cuts stdin into N-byte\n"
	"datagrams instead), and each datagram that comes back is written to\n"
	"stdout as it came.  At the end of stdin tcpkit waits for the\n"
	"replies: it exits 0 once every datagram has had one, or after 1s\n"
	"(-i D: after D) without another.  An ICMP port unreachable\n"
	"(nothing listens on that UDP port) exits 69.  A datagram longer\n"
	"than the receive buffer would be reported, never cut silently.\n"
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
	"  -p, --source-port PORT   connect from this local port (on -s's\n"
	"                           address, if given); a port in use is an\n"
	"                           error\n" CONNOPT_KEEPALIVE_HELP
	"  -t, --telnet             refuse every telnet option the server\n"
	"                           asks for or offers, and strip telnet\n"
	"                           commands from what is printed (nc -t)\n" HEXDUMP_HELP
	"      --proxy URL          go through a proxy: socks5://, socks5h://\n"
	"                           (the proxy resolves HOST), socks4a:// or\n"
	"                           http:// (CONNECT), [USER:PASSWORD@]HOST[:PORT]\n"
	"                           (port 1080 by default)\n"
	"  -C, --crlf               send stdin's line ends as CRLF\n"
	"  -u, --udp                UDP datagrams instead of a TCP stream\n"
	"      --datagram-size N    UDP: stdin in datagrams of N bytes\n"
	"                           (1-65507), not one per line\n"
	"      --no-shutdown        do not send FIN at the end of stdin\n"
	"      --send-only          do not print what the peer sends\n"
	"      --recv-only          do not read stdin (and send nothing)\n"
	"      --exec CMD           once connected, run CMD, a program and its\n"
	"                           arguments (split as ncat does, no shell),\n"
	"                           with the socket as its stdin and stdout\n"
	"                           (ncat's client mode); its exit status is\n"
	"                           tcpkit's (128 + N if killed by signal N);\n"
	"                           not with --tls yet\n"
	"      --sh-exec CMD        the same with /bin/sh -c CMD\n"
	"  -v, --verbose            report 'connected to ADDR:PORT' on stderr\n"
	"  -h, --help               show this help\n"
	"\n" TLSOPT_CLIENT_HELP "\n"
	"Durations: 10 or 1.5 (seconds), 250ms, 2s, 1m.\n"
	"\n"
	"Exit codes: 0 the peer closed, 64 usage (also port 0, an empty or\n"
	"over-long HOST), 66 a --cacert, --cert or --key file is missing, 68\n"
	"unknown host, 69 refused or unreachable (or reset; unix: also no\n"
	"socket at PATH; UDP: ICMP port unreachable; --proxy: the proxy\n"
	"refused the request or could not reach the target), 73 the -x file\n"
	"cannot be created, 74 it cannot be written, 75 connect, idle,\n"
	"--max-time, keepalive or TLS handshake timeout, 76 TLS failure (or\n"
	"the proxy's protocol broken), 77 the proxy refused the credentials,\n"
	"1 other (a source port in use); with --exec, the program's status\n"
	"once it ran (69 if it could not).\n"
	"\n"
	"Examples:\n"
	"  tcpkit connect localhost 9999            talk to a line server\n"
	"  printf 'GET / HTTP/1.0\\r\\n\\r\\n' | tcpkit connect example.org 80\n"
	"  tcpkit connect -v -w 2 [::1]:7007 < file > copy\n"
	"  tcpkit connect --tls example.org 443\n"
	"  tcpkit connect unix:/run/app.sock        a local server's socket\n"
	"  tcpkit connect -t -x dump.txt localhost 23\n"
	"  echo hello | tcpkit connect -u 127.0.0.1 7007   one UDP datagram\n"
	"  tcpkit connect --sh-exec 'echo hello; cat' localhost 9000\n"
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
