/*
 * sockops - run a script of BSD socket calls given on the command line and
 * print one line per step, so tests can compare what a program observes under
 * the wrapper with what it observes on kernel loopback.
 *
 * Each step works on the "current" socket (the last one created or accepted).
 * Output is "<op>: OK", "<op>: <ERRNO NAME>", or "<op>: <value>".
 *
 *   tcp4 | tcp6              socket(AF_INET[6], SOCK_STREAM, 0)
 *   unix                     socket(AF_UNIX, SOCK_STREAM, 0)
 *   use N                    make the N-th socket (0-based, creation order) current
 *   bind HOST PORT           HOST is IPv4 or IPv6 text
 *   connect HOST PORT
 *   listen
 *   accept | accept4         accept4 uses SOCK_NONBLOCK|SOCK_CLOEXEC and reports them,
 *                            then makes the new socket blocking again
 *   from                     the address accept returned
 *   name | peer              getsockname / getpeername
 *   nonblock | block         set / clear O_NONBLOCK
 *   pollout MS | pollin MS   "ready" or "timeout"
 *   soerror                  getsockopt(SO_ERROR): OK or the errno name
 *   send TEXT | write TEXT   one call, prints the count
 *   sendn N | writen N       one call with N pattern bytes, prints the count
 *   recvall                  read to EOF: "<n> bytes fnv=<hash>", then "data: <text>" if short
 *   shutwr | shutrd          shutdown(SHUT_WR / SHUT_RD)
 *   close
 *   backing                  "unix" if the fd is a Unix socket (listed in
 *                            /proc/self/net/unix), "inet" if in /proc/net/tcp[6], else "unknown"
 *   ready                    prints "ready"
 *   wait                     prints "wait" and reads one line from stdin (EOF: exit 3)
 *   sleep MS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "progs.h"

#define MAX_FDS 64

static int fds[MAX_FDS];
static int nfds;
static int cur = -1;
static struct sockaddr_storage from_addr;
static socklen_t from_len;

static void result(const char *op, int rc)
{
	if (rc < 0)
		printf("%s: %s\n", op, ename(errno));
	else
		printf("%s: OK\n", op);
}

static void push(int fd)
{
	if (nfds < MAX_FDS)
		fds[nfds++] = fd;
	cur = fd;
}

static void print_addr(const char *op, const struct sockaddr *sa, socklen_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (len == 0) {
		printf("%s: (empty)\n", op);
		return;
	}
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		printf("%s: %s %u\n", op, host, ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		printf("%s: %s %u\n", op, host, ntohs(in6->sin6_port));
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
		printf("%s: unix:%.*s\n", op, (int)(len - offsetof(struct sockaddr_un, sun_path)),
		       un->sun_path);
		break;
	}
	default:
		printf("%s: family=%d\n", op, sa->sa_family);
	}
}

static int inode_in(const char *path, unsigned long ino, int column)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int found = 0;

	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL) { /* header */
		fclose(f);
		return 0;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL;
		char *tok = strtok_r(line, " \t\n", &save);
		for (int i = 0; tok != NULL; i++) {
			if (i == column) {
				found = strtoul(tok, NULL, 10) == ino;
				break;
			}
			tok = strtok_r(NULL, " \t\n", &save);
		}
	}
	fclose(f);
	return found;
}

static void backing(void)
{
	struct stat st;

	if (fstat(cur, &st) < 0) {
		printf("backing: %s\n", ename(errno));
		return;
	}
	/* /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path */
	if (inode_in("/proc/self/net/unix", st.st_ino, 6))
		printf("backing: unix\n");
	else if (inode_in("/proc/self/net/tcp", st.st_ino, 9) ||
		 inode_in("/proc/self/net/tcp6", st.st_ino, 9))
		printf("backing: inet\n");
	else
		printf("backing: unknown\n");
}

static void write_n(const char *op, const char *count, int use_send)
{
	size_t n = strtoul(count, NULL, 10);
	unsigned char *buf = malloc(n ? n : 1);
	ssize_t rc;

	if (buf == NULL) {
		perror("malloc");
		exit(2);
	}
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	rc = use_send ? send(cur, buf, n, 0) : write(cur, buf, n);
	if (rc < 0)
		printf("%s: %s\n", op, ename(errno));
	else
		printf("%s: %zd fnv=%08x\n", op, rc, fnv(FNV_INIT, buf, (size_t)rc));
	free(buf);
}

static void recv_all(void)
{
	unsigned char buf[65536];
	unsigned char head[201];
	size_t total = 0;
	uint32_t h = FNV_INIT;

	for (;;) {
		ssize_t n = read(cur, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			printf("recvall: %s after %zu bytes\n", ename(errno), total);
			return;
		}
		if (n == 0)
			break;
		if (total < sizeof(head) - 1) {
			size_t k = sizeof(head) - 1 - total;
			memcpy(head + total, buf, (size_t)n < k ? (size_t)n : k);
		}
		h = fnv(h, buf, (size_t)n);
		total += (size_t)n;
	}
	printf("recvall: %zu bytes fnv=%08x\n", total, h);
	if (total <= 200) {
		head[total] = 0;
		for (size_t i = 0; i < total; i++)
			if (head[i] == '\n')
				head[i] = '|';
		printf("data: %s\n", head);
	}
}

static void do_poll(const char *op, short events, const char *ms)
{
	struct pollfd p = {.fd = cur, .events = events};
	int rc;

	do
		rc = poll(&p, 1, atoi(ms));
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		printf("%s: %s\n", op, ename(errno));
	else
		printf("%s: %s\n", op, rc == 0 ? "timeout" : "ready");
}

static void need(int argc, int i, int n, const char *op)
{
	if (i + n >= argc) {
		fprintf(stderr, "sockops: %s needs %d argument(s)\n", op, n);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++) {
		const char *op = argv[i];
		struct sockaddr_storage ss;
		socklen_t len;
		int rc;

		if (strcmp(op, "tcp4") == 0 || strcmp(op, "tcp6") == 0) {
			int fd = socket(op[3] == '4' ? AF_INET : AF_INET6, SOCK_STREAM, 0);
			result(op, fd);
			push(fd);
		} else if (strcmp(op, "unix") == 0) {
			int fd = socket(AF_UNIX, SOCK_STREAM, 0);
			result(op, fd);
			push(fd);
		} else if (strcmp(op, "use") == 0) {
			need(argc, i, 1, op);
			int k = atoi(argv[++i]);
			cur = (k >= 0 && k < nfds) ? fds[k] : -1;
		} else if (strcmp(op, "bind") == 0 || strcmp(op, "connect") == 0) {
			need(argc, i, 2, op);
			len = make_addr(argv[i + 1], (unsigned)atoi(argv[i + 2]), &ss);
			i += 2;
			if (op[0] == 'b')
				rc = bind(cur, (struct sockaddr *)&ss, len);
			else
				rc = connect(cur, (struct sockaddr *)&ss, len);
			result(op, rc);
		} else if (strcmp(op, "listen") == 0) {
			result(op, listen(cur, 16));
		} else if (strcmp(op, "accept") == 0) {
			from_len = sizeof(from_addr);
			int fd = accept(cur, (struct sockaddr *)&from_addr, &from_len);
			result(op, fd);
			push(fd);
		} else if (strcmp(op, "accept4") == 0) {
			from_len = sizeof(from_addr);
			int fd = accept4(cur, (struct sockaddr *)&from_addr, &from_len,
					 SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0) {
				result(op, fd);
			} else {
				int fl = fcntl(fd, F_GETFL);
				int fdfl = fcntl(fd, F_GETFD);
				printf("%s: OK nonblock=%d cloexec=%d\n", op, (fl & O_NONBLOCK) != 0,
				       (fdfl & FD_CLOEXEC) != 0);
				fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
			}
			push(fd);
		} else if (strcmp(op, "from") == 0) {
			print_addr(op, (struct sockaddr *)&from_addr, from_len);
		} else if (strcmp(op, "name") == 0 || strcmp(op, "peer") == 0) {
			len = sizeof(ss);
			memset(&ss, 0, sizeof(ss));
			if (op[0] == 'n')
				rc = getsockname(cur, (struct sockaddr *)&ss, &len);
			else
				rc = getpeername(cur, (struct sockaddr *)&ss, &len);
			if (rc < 0)
				result(op, rc);
			else
				print_addr(op, (struct sockaddr *)&ss, len);
		} else if (strcmp(op, "nonblock") == 0 || strcmp(op, "block") == 0) {
			int fl = fcntl(cur, F_GETFL);
			if (fl >= 0)
				fl = fcntl(cur, F_SETFL,
					   op[0] == 'n' ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
			result(op, fl);
		} else if (strcmp(op, "pollout") == 0 || strcmp(op, "pollin") == 0) {
			need(argc, i, 1, op);
			do_poll(op, op[4] == 'o' ? POLLOUT : POLLIN, argv[++i]);
		} else if (strcmp(op, "soerror") == 0) {
			int err = 0;
			len = sizeof(err);
			rc = getsockopt(cur, SOL_SOCKET, SO_ERROR, &err, &len);
			if (rc < 0)
				result(op, rc);
			else
				printf("%s: %s\n", op, err == 0 ? "OK" : ename(err));
		} else if (strcmp(op, "send") == 0 || strcmp(op, "write") == 0) {
			need(argc, i, 1, op);
			const char *t = argv[++i];
			ssize_t n = op[0] == 's' ? send(cur, t, strlen(t), 0) : write(cur, t, strlen(t));
			if (n < 0)
				printf("%s: %s\n", op, ename(errno));
			else
				printf("%s: %zd\n", op, n);
		} else if (strcmp(op, "sendn") == 0 || strcmp(op, "writen") == 0) {
			need(argc, i, 1, op);
			write_n(op, argv[++i], op[0] == 's');
		} else if (strcmp(op, "recvall") == 0) {
			recv_all();
		} else if (strcmp(op, "shutwr") == 0) {
			result(op, shutdown(cur, SHUT_WR));
		} else if (strcmp(op, "shutrd") == 0) {
			result(op, shutdown(cur, SHUT_RD));
		} else if (strcmp(op, "close") == 0) {
			result(op, close(cur));
		} else if (strcmp(op, "backing") == 0) {
			backing();
		} else if (strcmp(op, "ready") == 0) {
			printf("ready\n");
		} else if (strcmp(op, "wait") == 0) {
			char line[256];
			printf("wait\n");
			if (fgets(line, sizeof(line), stdin) == NULL)
				return 3;
		} else if (strcmp(op, "sleep") == 0) {
			need(argc, i, 1, op);
			int ms = atoi(argv[++i]);
			struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		} else {
			fprintf(stderr, "sockops: unknown op %s\n", op);
			return 2;
		}
	}
	return 0;
}
