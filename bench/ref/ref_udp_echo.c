/* ref_udp_echo.c: the reference UDP echo server, a plain recvfrom/sendto
 * loop. */

/*
 * The UDP suite's baseline (bench/udp.py): one thread, one blocking
 * socket, each datagram received with recvfrom() into one static buffer
 * and sent back with sendto().  No event loop, no batching: two system
 * calls per datagram, the least a server that answers each one can do
 * without recvmmsg/sendmmsg.
 *
 * usage: bench_ref_udp [PORT]   (0 or nothing: any free port)
 * Prints "listening on udp://127.0.0.1:PORT", then runs until killed.
 * Loopback only.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[65536];

int
main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd, rcvbuf = 4 * 1024 * 1024;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(argc > 1 ? (unsigned short)atoi(argv[1]) : 0);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	/* The same receive buffer tcpkit's UDP server asks for. */
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) <
		    0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("bench_ref_udp");
		return 1;
	}
	printf("listening on udp://127.0.0.1:%u\n", ntohs(a.sin_port));
	fflush(stdout);
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0,
				     (struct sockaddr *)&peer, &plen);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("bench_ref_udp: recvfrom");
			return 1;
		}
		/* A full send buffer blocks: the reply is never dropped here.
		 */
		while (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer,
			      plen) < 0 &&
		       errno == EINTR)
			;
	}
}
