/*
 * forkstorm - fork from a multi-threaded program while threads hammer the
 * socket table (issue 3, item 9).  Self-checking ("FAIL ...", exit 1).
 *
 *   forkstorm HOST FORKS HAMMERS INFLIGHT
 *
 * The parent serves a TCP echo listener and a UDP echo socket on HOST (two
 * threads each) and runs HAMMERS threads that create, bind, dup, query and
 * close sockets without pause.  Meanwhile the main thread forks FORKS
 * children, at most INFLIGHT at a time.  Each child (guarded by alarm(), so
 * a deadlock kills it with SIGALRM instead of hanging) checks a socket it
 * inherited, then creates new ones: a TCP connection to the parent's echo
 * listener and a UDP exchange with the parent's UDP socket, checking data and
 * addresses, and leaves with _exit(0).  Every child must exit with 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progs.h"

static atomic_int stop;
static atomic_ulong hammer_ops;
static atomic_int failures;
static const char *host;
static int family;
static struct sockaddr_storage tcp_addr, udp_addr, inherited_name;
static socklen_t addr_len;
static int lst = -1, udp = -1, inherited = -1;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(line, sizeof(line), "FAIL [%d] ", (int)getpid());
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* one write: children and threads print concurrently */
	ssize_t ignored = write(1, line, (size_t)n);
	(void)ignored;
	atomic_fetch_add(&failures, 1);
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const unsigned char *x = (const void *)a, *y = (const void *)b;
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(x + offsetof(struct sockaddr_in, sin_addr),
			      y + offsetof(struct sockaddr_in, sin_addr), 4) == 0;
	return memcmp(x + offsetof(struct sockaddr_in6, sin6_addr),
		      y + offsetof(struct sockaddr_in6, sin6_addr), 16) == 0;
}

/* ------------------------------------------------------------------ parent threads */

static void *tcp_echo(void *arg)
{
	(void)arg;
	char buf[256];
	while (!atomic_load(&stop)) {
		int a = accept(lst, NULL, NULL);
		if (a < 0) {
			if (errno != EINTR && errno != ECONNABORTED && !atomic_load(&stop))
				fail("accept: %s", ename(errno));
			continue;
		}
		echo_stream(a, buf, sizeof(buf));
		close(a);
	}
	return NULL;
}

static void *udp_echo(void *arg)
{
	(void)arg;
	char buf[256];
	while (!atomic_load(&stop)) {
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			continue;
		if (n == 4 && memcmp(buf, "quit", 4) == 0)
			break;
		sendto(udp, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
	return NULL;
}

static void *hammer(void *arg)
{
	uint64_t r = 88172645463325252ull + (uint64_t)(intptr_t)arg;
	while (!atomic_load(&stop)) {
		xorshift(&r);
		int type = (r & 1) ? SOCK_STREAM : SOCK_DGRAM;
		int s = socket(family, type, 0);
		if (s < 0) {
			fail("hammer: socket: %s", ename(errno));
			continue;
		}
		struct sockaddr_storage ss, name;
		socklen_t len = make_addr(host, 0, &ss);
		if ((r & 6) == 0 && bind(s, (struct sockaddr *)&ss, len) != 0)
			fail("hammer: bind: %s", ename(errno));
		int d = (r & 8) ? dup(s) : -1;
		len = sizeof(name);
		if (getsockname(s, (struct sockaddr *)&name, &len) != 0 || name.ss_family != family)
			fail("hammer: getsockname: %s family %d", ename(errno), name.ss_family);
		int v = 0;
		socklen_t vl = sizeof(v);
		if (getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl) != 0 || v != type)
			fail("hammer: SO_TYPE %d", v);
		close(s);
		if (d >= 0)
			close(d);
		atomic_fetch_add(&hammer_ops, 1);
	}
	return NULL;
}

/* ------------------------------------------------------------------ child */

static void child(int index)
{
	alarm(20); /* a deadlock ends in SIGALRM, seen by the parent */
	struct sockaddr_storage ss, name;
	socklen_t len = sizeof(name);
	char msg[64], back[64];

	/* The socket inherited from the parent keeps its identity. */
	if (getsockname(inherited, (struct sockaddr *)&name, &len) != 0 ||
	    !same_addr(&name, &inherited_name))
		fail("child %d: inherited socket lost its name (%s)", index, ename(errno));

	/* TCP to the parent's echo. */
	int c = socket(family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&tcp_addr, addr_len) != 0) {
		fail("child %d: connect: %s", index, ename(errno));
		_exit(1);
	}
	len = sizeof(name);
	if (getsockname(c, (struct sockaddr *)&name, &len) != 0 || !same_host(&name, &tcp_addr))
		fail("child %d: its TCP socket is not on %s", index, host);
	int n = snprintf(msg, sizeof(msg), "child %d pid %d", index, (int)getpid());
	if (write(c, msg, (size_t)n) != n)
		fail("child %d: write: %s", index, ename(errno));
	shutdown(c, SHUT_WR);
	int got = (int)read_to_eof(c, back, sizeof(back));
	ssize_t k;
	if (got != n || memcmp(back, msg, (size_t)n) != 0)
		fail("child %d: TCP echo: got %d bytes, expected %d", index, got, n);
	close(c);

	/* UDP to the parent's echo: the reply comes from its address. */
	int u = socket(family, SOCK_DGRAM, 0);
	struct timeval tv = {.tv_sec = 5};
	setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int ok = 0;
	for (int attempt = 0; attempt < 3 && !ok; attempt++) {
		if (sendto(u, msg, (size_t)n, 0, (struct sockaddr *)&udp_addr, addr_len) != n) {
			fail("child %d: sendto: %s", index, ename(errno));
			break;
		}
		len = sizeof(ss);
		k = recvfrom(u, back, sizeof(back), 0, (struct sockaddr *)&ss, &len);
		if (k < 0)
			continue;
		ok = 1;
		if (k != n || memcmp(back, msg, (size_t)n) != 0)
			fail("child %d: UDP echo mismatch", index);
		if (!same_addr(&ss, &udp_addr))
			fail("child %d: UDP reply not from the parent's address", index);
	}
	if (!ok)
		fail("child %d: no UDP reply", index);
	close(u);
	_exit(atomic_load(&failures) ? 1 : 0);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: forkstorm HOST FORKS HAMMERS INFLIGHT\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	host = argv[1];
	family = family_of(host);
	int forks = atoi(argv[2]), hammers = atoi(argv[3]), inflight = atoi(argv[4]);

	struct sockaddr_storage ss;
	addr_len = make_addr(host, 0, &ss);
	lst = socket(family, SOCK_STREAM, 0);
	udp = socket(family, SOCK_DGRAM, 0);
	inherited = socket(family, SOCK_DGRAM, 0);
	if (lst < 0 || bind(lst, (struct sockaddr *)&ss, addr_len) != 0 || listen(lst, 128) != 0 ||
	    udp < 0 || bind(udp, (struct sockaddr *)&ss, addr_len) != 0 || inherited < 0 ||
	    bind(inherited, (struct sockaddr *)&ss, addr_len) != 0) {
		printf("FAIL setup: %s\n", ename(errno));
		return 1;
	}
	socklen_t len = sizeof(tcp_addr);
	getsockname(lst, (struct sockaddr *)&tcp_addr, &len);
	len = sizeof(udp_addr);
	getsockname(udp, (struct sockaddr *)&udp_addr, &len);
	len = sizeof(inherited_name);
	getsockname(inherited, (struct sockaddr *)&inherited_name, &len);

	pthread_t echo_t[4], *ham = calloc((size_t)hammers, sizeof(pthread_t));
	for (int i = 0; i < 2; i++)
		pthread_create(&echo_t[i], NULL, tcp_echo, NULL);
	for (int i = 2; i < 4; i++)
		pthread_create(&echo_t[i], NULL, udp_echo, NULL);
	for (int i = 0; i < hammers; i++)
		pthread_create(&ham[i], NULL, hammer, (void *)(intptr_t)i);

	int started = 0, done = 0, bad = 0, running = 0;
	while (done < forks) {
		while (running < inflight && started < forks) {
			pid_t pid = fork();
			if (pid < 0) {
				fail("fork: %s", ename(errno));
				break;
			}
			if (pid == 0)
				child(started);
			started++;
			running++;
		}
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			fail("waitpid: %s", ename(errno));
			break;
		}
		running--;
		done++;
		if (WIFSIGNALED(status)) {
			bad++;
			fail("child pid %d killed by signal %d%s", (int)pid, WTERMSIG(status),
			     WTERMSIG(status) == SIGALRM ? " (deadlocked for 20 s)" : "");
		} else if (WEXITSTATUS(status) != 0) {
			bad++;
			fail("child pid %d exited with %d", (int)pid, WEXITSTATUS(status));
		}
		if (bad > 20)
			break;
	}

	atomic_store(&stop, 1);
	for (int i = 0; i < hammers; i++)
		pthread_join(ham[i], NULL);
	/* wake the echo threads */
	for (int i = 0; i < 2; i++) {
		int c = socket(family, SOCK_STREAM, 0);
		connect(c, (struct sockaddr *)&tcp_addr, addr_len);
		close(c);
	}
	int q = socket(family, SOCK_DGRAM, 0);
	for (int i = 0; i < 2; i++)
		sendto(q, "quit", 4, 0, (struct sockaddr *)&udp_addr, addr_len);
	for (int i = 0; i < 4; i++)
		pthread_join(echo_t[i], NULL);
	close(q);
	close(lst);
	close(udp);
	close(inherited);
	free(ham);
	printf("forks %d ok %d failed %d hammer_ops %lu\n", done, done - bad, bad,
	       atomic_load(&hammer_ops));
	return atomic_load(&failures) ? 1 : 0;
}
