/* ref_listen.h: what the bench's reference servers share: their listener. */
#ifndef REF_LISTEN_H
#define REF_LISTEN_H

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/*
 * Listen on 127.0.0.1:PORT, PORT from argv[1] (0 or none: any free port),
 * non-blocking, and say "listening on 127.0.0.1:PORT" on stdout, the line
 * bench/run.py waits for.  SIGPIPE is ignored from then on.  Exits with a
 * message naming the program on failure.
 */
static int
ref_listen(int argc, char **argv, const char *name)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int lfd, one = 1;

	signal(SIGPIPE, SIG_IGN);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(argc > 1 ? (unsigned short)atoi(argv[1]) : 0);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
		fprintf(stderr, "%s: listen: ", name);
		perror(NULL);
		exit(1);
	}
	printf("listening on 127.0.0.1:%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	return lfd;
}

#endif
