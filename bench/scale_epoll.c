/*
 * scale_epoll - one epoll server holding many concurrent TCP connections (issue 6, item 3).
 *
 *   scale_epoll server HOST N
 *       Listens on HOST:0 and prints "listening IP PORT".  Accepts connections with epoll;
 *       each connection sends one line "req C I\n" and gets back "req C I from IP:PORT\n",
 *       where IP:PORT is the peer address accept() reported.  A line on stdin prints
 *       "open O peak P answered A".  Prints "done closed N peak P answered A" and exits 0
 *       once N connections have been closed by their clients; exits 1 on stdin EOF before.
 *   scale_epoll client HOST PORT N C
 *       Opens N connections to HOST:PORT and keeps them all open; prints "connected N".
 *       On a line on stdin sends one request on every connection, checks every answer
 *       (the address in it must be the connection's own getsockname()) and prints
 *       "answered N" (or "BAD ..." and exit 1).  On the next line (or EOF) closes all and
 *       exits 0.
 *
 * Both raise RLIMIT_NOFILE as far as needed; when that is impossible they print
 * "SKIP <reason>" and exit 77.  Every process ends itself after 120 s (alarm).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE 96

static void die(const char *what)
{
	printf("BAD %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void raise_nofile(long need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit");
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= (rlim_t)need)
		return;
	struct rlimit want = rl;
	want.rlim_cur = (rlim_t)need;
	if (want.rlim_max != RLIM_INFINITY && want.rlim_max < (rlim_t)need)
		want.rlim_max = (rlim_t)need; /* allowed with CAP_SYS_RESOURCE */
	if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
		printf("SKIP RLIMIT_NOFILE: need %ld open files, hard limit is %llu and cannot be "
		       "raised (%s)\n", need, (unsigned long long)rl.rlim_max, strerror(errno));
		fflush(stdout);
		exit(77);
	}
}

static void fmt_addr(const struct sockaddr_in *sin, char *out, size_t n)
{
	char ip[INET_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
	snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
}

static int stdin_line(void)
{
	char buf[256];
	ssize_t r = read(0, buf, sizeof(buf));
	return r > 0;
}

struct conn {
	char peer[32];
	char buf[LINE];
	int len;
	int answered;
};

static int server(const char *host, long n)
{
	raise_nofile(n + 64);
	struct conn *conns = calloc((size_t)n + 64, sizeof(*conns));
	if (conns == NULL)
		die("calloc");
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0)
		die("socket");
	struct sockaddr_in sin = {.sin_family = AF_INET};
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("HOST");
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		die("bind");
	if (listen(lfd, 4096) != 0)
		die("listen");
	socklen_t sl = sizeof(sin);
	if (getsockname(lfd, (struct sockaddr *)&sin, &sl) != 0)
		die("getsockname");
	char me[32];
	fmt_addr(&sin, me, sizeof(me));
	*strchr(me, ':') = ' ';
	printf("listening %s\n", me);
	fflush(stdout);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
		die("epoll_ctl listen");
	ev.data.fd = 0;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0)
		die("epoll_ctl stdin");

	long open_now = 0, peak = 0, closed = 0, answered = 0;
	struct epoll_event evs[256];
	while (closed < n) {
		int k = epoll_wait(ep, evs, 256, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (fd == 0) {
				if (!stdin_line()) {
					printf("BAD stdin closed with %ld of %ld closed\n", closed, n);
					fflush(stdout);
					return 1;
				}
				printf("open %ld peak %ld answered %ld\n", open_now, peak, answered);
				fflush(stdout);
			} else if (fd == lfd) {
				for (;;) {
					struct sockaddr_in peer;
					socklen_t pl = sizeof(peer);
					int c = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK);
					if (c < 0) {
						if (errno == EAGAIN || errno == EWOULDBLOCK)
							break;
						if (errno == EINTR || errno == ECONNABORTED)
							continue;
						die("accept4");
					}
					if (c >= n + 64) {
						errno = EMFILE;
						die("fd beyond table");
					}
					struct conn *cn = &conns[c];
					memset(cn, 0, sizeof(*cn));
					if (peer.sin_family != AF_INET) {
						errno = EAFNOSUPPORT;
						die("accept4 peer family");
					}
					fmt_addr(&peer, cn->peer, sizeof(cn->peer));
					struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0)
						die("epoll_ctl conn");
					if (++open_now > peak)
						peak = open_now;
				}
			} else {
				struct conn *cn = &conns[fd];
				ssize_t r = read(fd, cn->buf + cn->len, (size_t)(LINE - 1 - cn->len));
				if (r < 0) {
					if (errno == EAGAIN || errno == EINTR)
						continue;
					die("read");
				}
				if (r == 0) {
					close(fd); /* also leaves the epoll set */
					open_now--;
					closed++;
					continue;
				}
				cn->len += (int)r;
				cn->buf[cn->len] = '\0';
				char *nl = strchr(cn->buf, '\n');
				if (nl == NULL) {
					if (cn->len >= LINE - 1) {
						errno = EMSGSIZE;
						die("request too long");
					}
					continue;
				}
				*nl = '\0';
				char out[2 * LINE];
				int m = snprintf(out, sizeof(out), "%s from %s\n", cn->buf, cn->peer);
				if (write(fd, out, (size_t)m) != m)
					die("write answer");
				cn->len = 0;
				cn->answered++;
				answered++;
			}
		}
	}
	printf("done closed %ld peak %ld answered %ld\n", closed, peak, answered);
	fflush(stdout);
	return 0;
}

static int client(const char *host, int port, long n, int id)
{
	raise_nofile(n + 64);
	int *fds = calloc((size_t)n, sizeof(int));
	char(*want)[2 * LINE] = calloc((size_t)n, sizeof(*want));
	int *got = calloc((size_t)n, sizeof(int));
	if (fds == NULL || want == NULL || got == NULL)
		die("calloc");
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		die("HOST");
	for (long i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0)
			die("socket");
		if (connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)) != 0)
			die("connect");
	}
	printf("connected %ld\n", n);
	fflush(stdout);
	if (!stdin_line())
		return 1;

	for (long i = 0; i < n; i++) {
		struct sockaddr_in me;
		socklen_t ml = sizeof(me);
		if (getsockname(fds[i], (struct sockaddr *)&me, &ml) != 0)
			die("getsockname");
		char addr[32];
		fmt_addr(&me, addr, sizeof(addr));
		char req[LINE];
		int m = snprintf(req, sizeof(req), "req %d %ld\n", id, i);
		snprintf(want[i], sizeof(want[i]), "req %d %ld from %s\n", id, i, addr);
		if (write(fds[i], req, (size_t)m) != m)
			die("write request");
	}
	struct pollfd *pfds = calloc((size_t)n, sizeof(*pfds));
	if (pfds == NULL)
		die("calloc");
	long done = 0;
	while (done < n) {
		long np = 0;
		for (long i = 0; i < n; i++) {
			if (got[i] >= 0 && (size_t)got[i] < strlen(want[i])) {
				pfds[np].fd = fds[i];
				pfds[np].events = POLLIN;
				pfds[np].revents = 0;
				np++;
			}
		}
		int k = poll(pfds, (nfds_t)np, 30000);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (k == 0) {
			printf("BAD %ld of %ld answers missing after 30 s\n", n - done, n);
			fflush(stdout);
			return 1;
		}
		for (long j = 0, i = 0; j < np; j++) {
			if (pfds[j].revents == 0)
				continue;
			while (fds[i] != pfds[j].fd)
				i++;
			size_t wl = strlen(want[i]);
			char buf[2 * LINE];
			ssize_t r = read(fds[i], buf, wl - (size_t)got[i]);
			if (r <= 0) {
				printf("BAD connection %ld: %s before the answer\n", i,
				       r == 0 ? "EOF" : strerror(errno));
				fflush(stdout);
				return 1;
			}
			if (memcmp(buf, want[i] + got[i], (size_t)r) != 0) {
				buf[r] = '\0';
				printf("BAD connection %ld: got \"%s\", want \"%s\"\n", i, buf,
				       want[i]);
				fflush(stdout);
				return 1;
			}
			got[i] += (int)r;
			if ((size_t)got[i] == wl)
				done++;
		}
	}
	printf("answered %ld\n", done);
	fflush(stdout);
	(void)stdin_line();
	for (long i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

int main(int argc, char **argv)
{
	alarm(120);
	if (argc == 4 && strcmp(argv[1], "server") == 0)
		return server(argv[2], strtol(argv[3], NULL, 10));
	if (argc == 6 && strcmp(argv[1], "client") == 0)
		return client(argv[2], atoi(argv[3]), strtol(argv[4], NULL, 10), atoi(argv[5]));
	fprintf(stderr, "usage: scale_epoll server HOST N | client HOST PORT N ID\n");
	return 2;
}
