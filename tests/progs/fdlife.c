/*
 * fdlife - fd lifetime checks for the socket wrapper (issue 3, items 4, 7, 8).
 * Self-checking: prints "ok <what>" / "FAIL <what>: <detail>" and exits 1 if
 * anything failed.  Runs the same way on kernel loopback (no preload): then
 * the checks that look at socket files in SOCKET_WRAPPER_DIR are skipped.
 *
 *   fdlife dup H4 H6             dup/dup2/dup3/F_DUPFD[_CLOEXEC] share identity,
 *                                closing one keeps the others, dup2/dup3 onto a
 *                                wrapped fd drop the old identity
 *   fdlife churn STEPS SEED H4 H6 FILL
 *                                STEPS random creations/closes of fds of mixed
 *                                kinds, some closed behind the wrapper's back
 *                                (fclose(fdopen(fd))); no socket identity may
 *                                leak onto another fd.  Afterwards every fd
 *                                number used is reopened (dropping stale
 *                                metadata) and FILL sockets are created (none
 *                                may fail: no leaked SOCKET_WRAPPER_MAX_SOCKETS
 *                                slots)
 *   fdlife reuse KIND H4 H6      a bound wrapped UDP socket is closed behind the
 *                                wrapper's back, then KIND hands out its number:
 *                                the new fd must not answer as that socket
 *   fdlife max LIMIT H4          LIMIT inet sockets can be created, the next
 *                                fails with ENFILE (socket and accept); raises
 *                                RLIMIT_NOFILE first (exit 77 if it cannot)
 *   fdlife many N                N inet sockets (fewer if RLIMIT_NOFILE is lower)
 *                                all succeed; prints what the next one gives
 *
 * H4 / H6 are the local addresses to use: 127.0.0.1 and ::1 on the kernel,
 * 127.0.0.N and fd00::5357:5fNN under the wrapper.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGS_SELF_CHECK
#include "progs.h"

static const char *host4 = "127.0.0.1";
static const char *host6 = "::1";

/* ------------------------------------------------------------------ helpers */

static int name_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	return getsockname(fd, (struct sockaddr *)ss, &len);
}

static int peer_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	return getpeername(fd, (struct sockaddr *)ss, &len);
}

static int sockopt_int(int fd, int level, int name, int *value)
{
	socklen_t len = sizeof(*value);
	*value = -1;
	return getsockopt(fd, level, name, value, &len);
}

/* A socket of family/type bound to host:0 (host NULL: unbound). */
static int bound_socket(int family, int type, const char *host, struct sockaddr_storage *name)
{
	int fd = socket(family, type, 0);
	if (fd < 0)
		return -1;
	if (host != NULL) {
		struct sockaddr_storage ss;
		socklen_t len = make_addr(host, 0, &ss);
		if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
	}
	if (name != NULL)
		name_of(fd, name);
	return fd;
}

/* ---- socket files in SOCKET_WRAPPER_DIR (only when running wrapped) */

static void expect_file(const char *what, const struct sockaddr_storage *ss, int type, int want)
{
	int have = sw_file_exists(ss, type);
	char buf[128];
	if (have < 0)
		return;
	if (have != want)
		fail("%s: socket file of %s %s", what, addr_text(ss, buf, sizeof(buf)),
		     want ? "missing" : "still exists");
}

/* ---- identity checks */

/* fd is an inet socket of family/type whose name is `name`. */
static void expect_inet(const char *what, int fd, int family, int type,
			const struct sockaddr_storage *name)
{
	int v;
	char a[128], b[128];
	struct sockaddr_storage ss;
	if (sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v) != 0)
		fail("%s: fd %d SO_DOMAIN: %s, expected %d", what, fd, ename(errno), family);
	else if (v != family)
		fail("%s: fd %d SO_DOMAIN %d, expected %d", what, fd, v, family);
	if (sockopt_int(fd, SOL_SOCKET, SO_TYPE, &v) != 0)
		fail("%s: fd %d SO_TYPE: %s, expected %d", what, fd, ename(errno), type);
	else if (v != type)
		fail("%s: fd %d SO_TYPE %d, expected %d", what, fd, v, type);
	if (name_of(fd, &ss) != 0)
		fail("%s: fd %d getsockname: %s", what, fd, ename(errno));
	else if (!same_addr(&ss, name))
		fail("%s: fd %d getsockname %s, expected %s", what, fd, addr_text(&ss, a, sizeof(a)),
		     addr_text(name, b, sizeof(b)));
}

/* fd is open and not a socket at all. */
static void expect_nonsock(const char *what, int fd)
{
	int v;
	struct sockaddr_storage ss;
	char a[128];
	if (fcntl(fd, F_GETFD) < 0) {
		fail("%s: fd %d is not open: %s", what, fd, ename(errno));
		return;
	}
	errno = 0;
	if (name_of(fd, &ss) == 0 || errno != ENOTSOCK)
		fail("%s: getsockname on non-socket fd %d gave %s (%s), expected ENOTSOCK", what, fd,
		     errno ? ename(errno) : "success", addr_text(&ss, a, sizeof(a)));
	errno = 0;
	if (peer_of(fd, &ss) == 0 || errno != ENOTSOCK)
		fail("%s: getpeername on non-socket fd %d gave %s, expected ENOTSOCK", what, fd,
		     errno ? ename(errno) : "success");
	errno = 0;
	if (sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v) == 0 || errno != ENOTSOCK)
		fail("%s: SO_DOMAIN on non-socket fd %d gave %s (value %d), expected ENOTSOCK", what,
		     fd, errno ? ename(errno) : "success", v);
}

/* fd is an AF_UNIX socket of the given type. */
static void expect_unix(const char *what, int fd, int type)
{
	int v;
	struct sockaddr_storage ss;
	char a[128];
	if (sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v) != 0)
		fail("%s: fd %d SO_DOMAIN: %s, expected AF_UNIX", what, fd, ename(errno));
	else if (v != AF_UNIX)
		fail("%s: fd %d SO_DOMAIN %d, expected AF_UNIX", what, fd, v);
	if (sockopt_int(fd, SOL_SOCKET, SO_TYPE, &v) != 0 || v != type)
		fail("%s: fd %d SO_TYPE %d, expected %d", what, fd, v, type);
	if (name_of(fd, &ss) != 0)
		fail("%s: fd %d getsockname: %s, expected an AF_UNIX name", what, fd, ename(errno));
	else if (ss.ss_family != AF_UNIX)
		fail("%s: fd %d getsockname %s, expected an AF_UNIX name", what, fd,
		     addr_text(&ss, a, sizeof(a)));
}

static int cloexec_of(int fd)
{
	int fl = fcntl(fd, F_GETFD);
	return fl < 0 ? -1 : (fl & FD_CLOEXEC) != 0;
}

/* Close behind the wrapper's back: glibc's fclose closes with its internal
 * __close_nocancel, which no interposer sees. */
static int hidden_close(int fd)
{
	int acc = fcntl(fd, F_GETFL);
	const char *mode = "r";
	if (acc >= 0 && (acc & O_ACCMODE) == O_WRONLY)
		mode = "w";
	else if (acc >= 0 && (acc & O_ACCMODE) == O_RDWR)
		mode = "r+";
	FILE *f = fdopen(fd, mode);
	if (f == NULL)
		return -1;
	fclose(f); /* may report an error (e.g. a flush on a socket): the fd is gone anyway */
	return 0;
}

/* ------------------------------------------------------------------ dup */

static int cmd_dup(void)
{
	struct sockaddr_storage L, C, A, T, U, V, ss;
	char a[128], b[128];
	int v;

	int s = bound_socket(AF_INET, SOCK_STREAM, host4, &L);
	if (s < 0 || listen(s, 16) != 0)
		die("listener");
	expect_file("listener bound", &L, SOCK_STREAM, 1);

	struct {
		const char *how;
		int fd;
		int want_fd;   /* exact number, or -1 */
		int min_fd;    /* lowest acceptable number */
		int cloexec;
	} d[] = {
		{"dup", dup(s), -1, 0, 0},
		{"dup2", dup2(s, 50), 50, 50, 0},
		{"dup3", dup3(s, 51, O_CLOEXEC), 51, 51, 1},
		{"F_DUPFD", fcntl(s, F_DUPFD, 60), -1, 60, 0},
		{"F_DUPFD_CLOEXEC", fcntl(s, F_DUPFD_CLOEXEC, 70), -1, 70, 1},
		{"dup2 into a second table chunk", dup2(s, 1500), 1500, 1500, 0},
		{"F_DUPFD into a third chunk", fcntl(s, F_DUPFD, 2100), -1, 2100, 0},
	};
	const int n = (int)(sizeof(d) / sizeof(d[0]));
	for (int i = 0; i < n; i++) {
		char what[96];
		snprintf(what, sizeof(what), "%s of a listener", d[i].how);
		if (d[i].fd < 0) {
			fail("%s: %s", what, ename(errno));
			continue;
		}
		if ((d[i].want_fd >= 0 && d[i].fd != d[i].want_fd) || d[i].fd < d[i].min_fd)
			fail("%s: got fd %d", what, d[i].fd);
		if (cloexec_of(d[i].fd) != d[i].cloexec)
			fail("%s: FD_CLOEXEC is %d, expected %d", what, cloexec_of(d[i].fd),
			     d[i].cloexec);
		expect_inet(what, d[i].fd, AF_INET, SOCK_STREAM, &L);
		if (sockopt_int(d[i].fd, SOL_SOCKET, SO_ACCEPTCONN, &v) != 0 || v != 1)
			fail("%s: SO_ACCEPTCONN %d", what, v);
		ok(what);
	}

	/* Close the original and all copies but the last, in different ways. */
	close(s);
	close(d[0].fd);
	close_range((unsigned)d[1].fd, (unsigned)d[2].fd, 0); /* 50 and 51 */
	syscall(SYS_close, d[3].fd);			      /* routed through the wrapper */
	close(d[4].fd);
	close(d[5].fd);
	int last = d[6].fd;
	expect_file("after closing all copies but one", &L, SOCK_STREAM, 1);
	expect_inet("the remaining copy", last, AF_INET, SOCK_STREAM, &L);

	int c = bound_socket(AF_INET, SOCK_STREAM, NULL, NULL);
	socklen_t len = sizeof(L);
	if (c < 0 || connect(c, (struct sockaddr *)&L, L.ss_family == AF_INET
				       ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) != 0)
		fail("connect to the listener kept by its last copy: %s", ename(errno));
	len = sizeof(ss);
	int acc = accept(last, (struct sockaddr *)&ss, &len);
	if (acc < 0)
		die("accept on the last copy");
	name_of(c, &C);
	if (!same_addr(&ss, &C))
		fail("accept gave %s, client is %s", addr_text(&ss, a, sizeof(a)),
		     addr_text(&C, b, sizeof(b)));
	name_of(acc, &A);
	if (!same_addr(&A, &L))
		fail("accepted socket named %s, expected %s", addr_text(&A, a, sizeof(a)),
		     addr_text(&L, b, sizeof(b)));
	ok("closing copies keeps the listener alive");

	/* A connected socket: the copy keeps the connection. */
	int dc = dup(c);
	close(c);
	if (peer_of(dc, &ss) != 0 || !same_addr(&ss, &L))
		fail("getpeername on the copy of a connected socket: %s", addr_text(&ss, a, sizeof(a)));
	expect_inet("copy of a connected socket", dc, AF_INET, SOCK_STREAM, &C);
	if (send(dc, "ping", 4, 0) != 4)
		fail("send on the copy: %s", ename(errno));
	char buf[8] = {0};
	if (recv(acc, buf, sizeof(buf), 0) != 4 || memcmp(buf, "ping", 4) != 0)
		fail("data sent on the copy did not arrive");
	close(dc);
	if (recv(acc, buf, sizeof(buf), 0) != 0)
		fail("closing the last copy of the client did not end the connection");
	ok("copy of a connected socket carries the connection");
	close(acc);
	close(last);
	expect_file("after closing the last copy", &L, SOCK_STREAM, 0);
	ok("closing the last copy removes the socket file");

	/* dup2 onto a wrapped fd drops the old identity. */
	int u = bound_socket(AF_INET6, SOCK_DGRAM, host6, &U);
	int t = bound_socket(AF_INET, SOCK_STREAM, host4, &T);
	if (u < 0 || t < 0)
		die("sockets for dup2");
	expect_file("udp6 bound", &U, SOCK_DGRAM, 1);
	if (dup2(t, u) != u)
		fail("dup2(tcp4, udp6): %s", ename(errno));
	expect_inet("dup2 onto a wrapped fd", u, AF_INET, SOCK_STREAM, &T);
	expect_file("dup2 onto the last fd of a udp6 socket", &U, SOCK_DGRAM, 0);
	ok("dup2 onto a wrapped fd replaces its identity");

	int nul = open("/dev/null", O_RDWR);
	if (dup2(nul, t) != t)
		fail("dup2(/dev/null, tcp4): %s", ename(errno));
	expect_nonsock("dup2 of a file onto a wrapped fd", t);
	if (write(t, "x", 1) != 1)
		fail("write to /dev/null through the former socket fd: %s", ename(errno));
	expect_inet("the other copy after dup2 of a file over one", u, AF_INET, SOCK_STREAM, &T);
	expect_file("tcp4 still open through another fd", &T, SOCK_STREAM, 1);
	ok("dup2 of a file onto a wrapped fd makes it a file");

	int w = bound_socket(AF_INET6, SOCK_STREAM, host6, &V);
	if (w < 0)
		die("tcp6 for dup3");
	if (dup3(u, w, O_CLOEXEC) != w)
		fail("dup3 onto a wrapped fd: %s", ename(errno));
	expect_inet("dup3 onto a wrapped fd", w, AF_INET, SOCK_STREAM, &T);
	expect_file("dup3 onto the last fd of a tcp6 socket", &V, SOCK_STREAM, 0);
	if (cloexec_of(w) != 1)
		fail("dup3(O_CLOEXEC) did not set FD_CLOEXEC");
	close(u);
	expect_file("tcp4 after closing one of two copies", &T, SOCK_STREAM, 1);
	close(w);
	expect_file("tcp4 after closing both copies", &T, SOCK_STREAM, 0);
	ok("dup3 onto a wrapped fd replaces its identity");

	/* dup2 of a wrapped fd onto itself changes nothing. */
	int z = bound_socket(AF_INET, SOCK_DGRAM, host4, &ss);
	if (dup2(z, z) != z)
		fail("dup2(fd, fd): %s", ename(errno));
	expect_inet("dup2 onto itself", z, AF_INET, SOCK_DGRAM, &ss);
	expect_file("dup2 onto itself", &ss, SOCK_DGRAM, 1);
	errno = 0;
	if (dup3(z, z, 0) != -1 || errno != EINVAL)
		fail("dup3(fd, fd) gave %s, expected EINVAL", ename(errno));
	expect_inet("dup3 onto itself", z, AF_INET, SOCK_DGRAM, &ss);
	close(z);
	close(nul);
	ok("dup2 onto itself keeps the socket");
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ churn */

enum cat { C_NONSOCK, C_FILEP, C_UNIX, C_INET };

struct ent {
	int used;
	int cat;
	int family;
	int type;
	FILE *fp;
	struct sockaddr_storage local;
	const char *how;
};

#define MAXFD 4096
#define POOL 48

static struct ent ents[MAXFD];
static int reserved[MAXFD];
static int npool;
static int maxfd_seen;
static uint64_t rng;
static unsigned long step;
static unsigned long made[32], closed_by[8], opened;

static uint64_t rnd(void)
{
	return xorshift(&rng);
}

static void check_ent(int fd, const char *when)
{
	struct ent *e = &ents[fd];
	char what[160];
	snprintf(what, sizeof(what), "step %lu %s fd %d (%s)", step, when, fd, e->how);
	switch (e->cat) {
	case C_NONSOCK:
	case C_FILEP:
		expect_nonsock(what, fd);
		break;
	case C_UNIX:
		expect_unix(what, fd, e->type);
		break;
	case C_INET:
		expect_inet(what, fd, e->family, e->type, &e->local);
		break;
	}
}

static void add(int fd, int cat, int family, int type, const char *how)
{
	if (fd < 0) {
		fail("step %lu: %s: %s", step, how, ename(errno));
		return;
	}
	if (fd >= MAXFD) {
		printf("FAIL step %lu: fd %d too high\n", step, fd);
		exit(1);
	}
	if (reserved[fd] || ents[fd].used)
		fail("step %lu: %s returned fd %d which is still open", step, how, fd);
	struct ent *e = &ents[fd];
	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->cat = cat;
	e->family = family;
	e->type = type;
	e->how = how;
	opened++;
	if (cat == C_INET)
		name_of(fd, &e->local);
	npool++;
	if (fd > maxfd_seen)
		maxfd_seen = fd;
	check_ent(fd, "new");
}

static void forget(int fd)
{
	if (ents[fd].used) {
		ents[fd].used = 0;
		npool--;
	}
}

/* A random pool fd, or -1. */
static int pick(void)
{
	if (npool == 0)
		return -1;
	int k = (int)(rnd() % (uint64_t)npool);
	for (int fd = 0; fd <= maxfd_seen; fd++)
		if (ents[fd].used && k-- == 0)
			return fd;
	return -1;
}

static int lowest_pool_number;

/* fd takes over the identity of src (a dup). */
static void copy_ent(int fd, int src, const char *how)
{
	if (fd < 0) {
		fail("step %lu: %s: %s", step, how, ename(errno));
		return;
	}
	struct ent e = ents[src];
	if (e.cat == C_FILEP)
		e.cat = C_NONSOCK;
	e.fp = NULL;
	e.how = how;
	if (ents[fd].used && fd != src)
		forget(fd);
	if (fd >= MAXFD) {
		printf("FAIL fd %d too high\n", fd);
		exit(1);
	}
	ents[fd] = e;
	ents[fd].used = 1;
	opened++;
	npool++;
	if (fd > maxfd_seen)
		maxfd_seen = fd;
	check_ent(fd, "new");
}

/* A dup2/dup3 target: a free number or a pool fd that is not a FILE. */
static int pick_target(void)
{
	for (int tries = 0; tries < 16; tries++) {
		int fd = lowest_pool_number + (int)(rnd() % (uint64_t)(maxfd_seen + 6 -
									lowest_pool_number));
		if (fd < MAXFD && !reserved[fd] && !(ents[fd].used && ents[fd].cat == C_FILEP))
			return fd;
	}
	return -1;
}

static int l_unix = -1, l_inet = -1, dev_null = -1;
static struct sockaddr_storage l_inet_name;
static struct sockaddr_un l_unix_name;

static void create(void)
{
	int k = (int)(rnd() % 26);
	int fds[2], fd, src, tgt;
	int fam = (rnd() & 1) ? AF_INET : AF_INET6;
	const char *h = fam == AF_INET ? host4 : host6;
	struct sockaddr_storage ss;
	sigset_t mask;

	made[k]++;
	switch (k) {
	case 0:
	case 1:
		fd = bound_socket(fam, SOCK_STREAM, (rnd() & 1) ? h : NULL, NULL);
		add(fd, C_INET, fam, SOCK_STREAM, k ? "tcp socket" : "tcp socket (maybe bound)");
		break;
	case 2:
	case 3:
		fd = bound_socket(fam, SOCK_DGRAM, (rnd() & 1) ? h : NULL, NULL);
		add(fd, C_INET, fam, SOCK_DGRAM, "udp socket");
		break;
	case 4:
		add(open("/dev/null", O_RDWR), C_NONSOCK, 0, 0, "open");
		break;
	case 5:
		add(openat(AT_FDCWD, "/dev/null", O_RDONLY), C_NONSOCK, 0, 0, "openat");
		break;
	case 6: {
		FILE *f = fopen("/dev/null", "r");
		if (f == NULL) {
			fail("fopen: %s", ename(errno));
			break;
		}
		add(fileno(f), C_FILEP, 0, 0, "fopen");
		ents[fileno(f)].fp = f;
		break;
	}
	case 7:
	case 8:
		if ((k == 7 ? pipe(fds) : pipe2(fds, O_CLOEXEC)) != 0) {
			fail("pipe: %s", ename(errno));
			break;
		}
		add(fds[0], C_NONSOCK, 0, 0, k == 7 ? "pipe" : "pipe2");
		add(fds[1], C_NONSOCK, 0, 0, k == 7 ? "pipe" : "pipe2");
		break;
	case 9: {
		int type = (rnd() & 1) ? SOCK_STREAM : SOCK_DGRAM;
		if (socketpair(AF_UNIX, type, 0, fds) != 0) {
			fail("socketpair: %s", ename(errno));
			break;
		}
		add(fds[0], C_UNIX, AF_UNIX, type, "socketpair");
		add(fds[1], C_UNIX, AF_UNIX, type, "socketpair");
		break;
	}
	case 10:
		add(eventfd(0, 0), C_NONSOCK, 0, 0, "eventfd");
		break;
	case 11:
		add(timerfd_create(CLOCK_MONOTONIC, 0), C_NONSOCK, 0, 0, "timerfd_create");
		break;
	case 12:
		sigemptyset(&mask);
		sigaddset(&mask, SIGUSR2);
		add(signalfd(-1, &mask, 0), C_NONSOCK, 0, 0, "signalfd");
		break;
	case 13:
		add(epoll_create(4), C_NONSOCK, 0, 0, "epoll_create");
		break;
	case 14:
		add(epoll_create1(EPOLL_CLOEXEC), C_NONSOCK, 0, 0, "epoll_create1");
		break;
	case 15:
		add(memfd_create("fdlife", 0), C_NONSOCK, 0, 0, "memfd_create");
		break;
	case 16:
		add(inotify_init1(0), C_NONSOCK, 0, 0, "inotify_init1");
		break;
	case 17:
	case 18:
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		add(fd, C_UNIX, AF_UNIX, SOCK_STREAM, "socket(AF_UNIX)");
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&l_unix_name, sizeof(l_unix_name)) != 0) {
			fail("connect to the unix listener: %s", ename(errno));
			break;
		}
		add(k == 17 ? accept(l_unix, NULL, NULL) : accept4(l_unix, NULL, NULL, SOCK_CLOEXEC),
		    C_UNIX, AF_UNIX, SOCK_STREAM, k == 17 ? "accept (unix)" : "accept4 (unix)");
		break;
	case 19:
	case 20: {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&l_inet_name,
				      sizeof(struct sockaddr_in)) != 0) {
			fail("step %lu: connect to the inet listener: %s", step, ename(errno));
			if (fd >= 0)
				close(fd);
			break;
		}
		add(fd, C_INET, AF_INET, SOCK_STREAM, "connected tcp");
		socklen_t len = sizeof(ss);
		int a = k == 19 ? accept(l_inet, (struct sockaddr *)&ss, &len)
				: accept4(l_inet, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK);
		add(a, C_INET, AF_INET, SOCK_STREAM, k == 19 ? "accept (inet)" : "accept4 (inet)");
		if (a >= 0 && !same_addr(&ss, &ents[fd].local))
			fail("step %lu: accept reported a peer that is not the client", step);
		break;
	}
	case 21:
		src = pick();
		if (src >= 0)
			copy_ent(dup(src), src, "dup");
		break;
	case 22:
	case 23:
		src = pick();
		if (src >= 0)
			copy_ent(fcntl(src, k == 22 ? F_DUPFD : F_DUPFD_CLOEXEC, (int)(rnd() % 80)), src,
				 k == 22 ? "F_DUPFD" : "F_DUPFD_CLOEXEC");
		break;
	case 24:
		src = pick();
		tgt = pick_target();
		if (src < 0 || tgt < 0 || src == tgt)
			break;
		if (rnd() & 1)
			copy_ent(dup2(src, tgt), src, "dup2");
		else
			copy_ent(dup3(src, tgt, O_CLOEXEC), src, "dup3");
		break;
	case 25:
		add(socket(AF_UNIX, SOCK_DGRAM, 0), C_UNIX, AF_UNIX, SOCK_DGRAM, "socket(AF_UNIX, DGRAM)");
		break;
	}
}

static void destroy(void)
{
	int fd = pick();
	if (fd < 0)
		return;
	struct ent *e = &ents[fd];
	check_ent(fd, "before close");
	int m = (int)(rnd() % 100);
	if (e->cat == C_FILEP) {
		fclose(e->fp);
		forget(fd);
		closed_by[0]++;
		return;
	}
	if (m < 30) {
		close(fd);
		closed_by[1]++;
	} else if (m < 40) {
		close_range((unsigned)fd, (unsigned)fd, 0);
		closed_by[2]++;
	} else if (m < 75) {
		if (hidden_close(fd) != 0)
			close(fd);
		closed_by[3]++;
	} else if (m < 85) {
		/* dup2 of a file over it: the number stays open, as a file */
		if (dup3(dev_null, fd, O_CLOEXEC) != fd)
			fail("step %lu: dup3(/dev/null, %d): %s", step, fd, ename(errno));
		forget(fd);
		add(fd, C_NONSOCK, 0, 0, "dup3 of /dev/null over a pool fd");
		closed_by[4]++;
		return;
	} else if (m < 95) {
		/* FD_CLOEXEC set by close_range is not a close */
		if (close_range((unsigned)fd, (unsigned)fd, CLOSE_RANGE_CLOEXEC) != 0)
			fail("close_range(CLOEXEC): %s", ename(errno));
		check_ent(fd, "after close_range(CLOSE_RANGE_CLOEXEC)");
		close(fd);
		closed_by[5]++;
	} else if (m < 98 && fd > lowest_pool_number) {
		/* a span: everything from fd to fd+3 */
		unsigned hi = (unsigned)fd + 3;
		for (unsigned i = (unsigned)fd; i <= hi && i < MAXFD; i++)
			if (ents[i].used && ents[i].cat == C_FILEP)
				hi = i - 1; /* do not close a FILE's fd under it */
		close_range((unsigned)fd, hi, 0);
		for (unsigned i = (unsigned)fd; i <= hi && i < MAXFD; i++)
			forget((int)i);
		closed_by[6]++;
		return;
	} else {
		/* closefrom: everything above; FILEs there are released after */
		closefrom(fd);
		for (int i = fd; i <= maxfd_seen; i++) {
			if (!ents[i].used)
				continue;
			if (ents[i].cat == C_FILEP)
				fclose(ents[i].fp); /* its fd is already closed */
			forget(i);
		}
		closed_by[7]++;
		return;
	}
	forget(fd);
}

static int cmd_churn(unsigned long steps, uint64_t seed, unsigned long fill)
{
	rng = seed ? seed : 88172645463325252ull;
	reserved[0] = reserved[1] = reserved[2] = 1;

	dev_null = open("/dev/null", O_RDWR);
	l_unix = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&l_unix_name, 0, sizeof(l_unix_name));
	l_unix_name.sun_family = AF_UNIX;
	snprintf(l_unix_name.sun_path + 1, sizeof(l_unix_name.sun_path) - 1, "fdlife-%d",
		 (int)getpid()); /* abstract name */
	if (l_unix < 0 || bind(l_unix, (struct sockaddr *)&l_unix_name, sizeof(l_unix_name)) != 0 ||
	    listen(l_unix, 64) != 0)
		die("unix listener");
	l_inet = bound_socket(AF_INET, SOCK_STREAM, host4, &l_inet_name);
	if (l_inet < 0 || listen(l_inet, 64) != 0)
		die("inet listener");
	reserved[dev_null] = reserved[l_unix] = reserved[l_inet] = 1;
	lowest_pool_number = l_inet + 1;
	if (dev_null > l_inet || l_unix > l_inet)
		die("unexpected fd order");

	for (step = 0; step < steps; step++) {
		if (npool < 8 || (npool < POOL && rnd() % 100 < 52))
			create();
		else
			destroy();
		if (step % 61 == 0)
			for (int fd = 0; fd <= maxfd_seen; fd++)
				if (ents[fd].used)
					check_ent(fd, "sweep");
		if (failures > 50) {
			printf("FAIL too many failures, stopping at step %lu\n", step);
			break;
		}
	}
	printf("steps %lu opened %lu maxfd %d\n", step, opened, maxfd_seen);
	printf("made");
	for (int i = 0; i < 26; i++)
		printf(" %lu", made[i]);
	printf("\nclosed_by fclose=%lu close=%lu close_range=%lu hidden=%lu dup3_over=%lu "
	       "cloexec_then_close=%lu close_range_span=%lu closefrom=%lu\n",
	       closed_by[0], closed_by[1], closed_by[2], closed_by[3], closed_by[4], closed_by[5],
	       closed_by[6], closed_by[7]);

	/* Close the pool, then hand out every number used once more, so that
	 * stale metadata (fds closed behind the wrapper's back) is dropped. */
	for (int fd = 0; fd <= maxfd_seen; fd++) {
		if (!ents[fd].used)
			continue;
		if (ents[fd].cat == C_FILEP)
			fclose(ents[fd].fp);
		else
			close(fd);
		forget(fd);
	}
	close(l_inet);
	close(l_unix);
	int opened[MAXFD];
	int nopen = 0;
	for (;;) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0)
			die("reopen");
		opened[nopen++] = fd;
		expect_nonsock("reopened number", fd);
		if (fd > maxfd_seen || nopen >= MAXFD)
			break;
	}
	for (int i = 0; i < nopen; i++)
		close(opened[i]);
	printf("reopened %d numbers\n", nopen);

	/* No leaked slots: `fill` more sockets all succeed. */
	int *fills = calloc(fill + 1, sizeof(int));
	unsigned long made_fill = 0;
	for (unsigned long i = 0; i < fill; i++) {
		fills[i] = socket(i & 1 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
		if (fills[i] < 0) {
			fail("fill socket %lu of %lu: %s", i + 1, fill, ename(errno));
			break;
		}
		made_fill++;
	}
	const char *max = getenv("SOCKET_WRAPPER_MAX_SOCKETS");
	if (wrapped() && max != NULL && strtoul(max, NULL, 10) == fill) {
		errno = 0;
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd >= 0 || errno != ENFILE)
			fail("socket beyond SOCKET_WRAPPER_MAX_SOCKETS after the churn: %s",
			     fd >= 0 ? "success" : ename(errno));
	}
	for (unsigned long i = 0; i < made_fill; i++)
		close(fills[i]);
	free(fills);
	printf("filled %lu\n", made_fill);
	close(dev_null);
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ reuse */

/* Make a bound wrapped UDP socket at the lowest free number and close it
 * behind the wrapper's back; returns its number. */
static int new_socket(struct sockaddr_storage *name)
{
	int fd = bound_socket(AF_INET6, SOCK_DGRAM, host6, name);
	if (fd < 0)
		die("udp6 socket");
	expect_file("stale socket bound", name, SOCK_DGRAM, 1);
	return fd;
}

static void make_stale(int fd)
{
	if (hidden_close(fd) != 0)
		die("fdopen");
	errno = 0;
	if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
		die("hidden close");
}

int __open_2(const char *path, int flags);

static int cmd_reuse(const char *kind)
{
	struct sockaddr_storage S, ss;
	int fds[2] = {-1, -1};
	int cat = C_NONSOCK, type = 0, family = 0;
	int writable = 1;
	FILE *fp = NULL;
	DIR *dir = NULL;
	char tmpl[] = "/tmp/fdlife-XXXXXX";
	/* Helpers made before the stale socket, so that it takes the lowest number. */
	int nul = open("/dev/null", O_RDWR);
	int lst = -1, cli = -1;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (strncmp(kind, "accept", 6) == 0) {
		snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "fdlife-reuse-%d", (int)getpid());
		lst = socket(AF_UNIX, SOCK_STREAM, 0);
		cli = socket(AF_UNIX, SOCK_STREAM, 0);
		if (bind(lst, (struct sockaddr *)&un, sizeof(un)) != 0 || listen(lst, 4) != 0 ||
		    connect(cli, (struct sockaddr *)&un, sizeof(un)) != 0)
			die("unix listener");
	}
	int x = new_socket(&S);
	make_stale(x);
	volatile int flags_v = O_RDWR; /* not a constant: a fortified open calls __open_2 */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);

	int fd = -1;
	if (strcmp(kind, "open") == 0)
		fd = open("/dev/null", O_RDWR);
	else if (strcmp(kind, "open64") == 0)
		fd = open64("/dev/null", O_RDWR);
	else if (strcmp(kind, "__open_2") == 0)
		fd = __open_2("/dev/null", flags_v);
	else if (strcmp(kind, "openat") == 0)
		fd = openat(AT_FDCWD, "/dev/null", O_RDWR);
	else if (strcmp(kind, "openat64") == 0)
		fd = openat64(AT_FDCWD, "/dev/null", O_RDWR);
	else if (strcmp(kind, "creat") == 0) {
		snprintf(tmpl, sizeof(tmpl), "/tmp/fdlc-%d", (int)getpid());
		fd = creat(tmpl, 0600);
		unlink(tmpl);
	} else if (strcmp(kind, "fopen") == 0 || strcmp(kind, "fopen64") == 0) {
		fp = kind[5] ? fopen64("/dev/null", "w") : fopen("/dev/null", "w");
		fd = fp ? fileno(fp) : -1;
	} else if (strcmp(kind, "pipe") == 0 || strcmp(kind, "pipe2") == 0) {
		if ((kind[4] ? pipe2(fds, O_CLOEXEC) : pipe(fds)) == 0)
			fd = fds[0] == x ? fds[0] : fds[1];
		writable = fd == fds[1];
	} else if (strcmp(kind, "socketpair") == 0) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0)
			fd = fds[0] == x ? fds[0] : fds[1];
		cat = C_UNIX;
		type = SOCK_STREAM;
		family = AF_UNIX;
	} else if (strcmp(kind, "socket_unix") == 0) {
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		cat = C_UNIX;
		type = SOCK_DGRAM;
		family = AF_UNIX;
		writable = 0;
	} else if (strcmp(kind, "socket_inet") == 0) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		cat = C_INET;
		type = SOCK_STREAM;
		family = AF_INET;
		writable = 0;
	} else if (strcmp(kind, "eventfd") == 0) {
		fd = eventfd(0, 0);
		writable = 0;
	} else if (strcmp(kind, "timerfd_create") == 0) {
		fd = timerfd_create(CLOCK_MONOTONIC, 0);
		writable = 0;
	} else if (strcmp(kind, "signalfd") == 0) {
		fd = signalfd(-1, &mask, 0);
		writable = 0;
	} else if (strcmp(kind, "epoll_create") == 0) {
		fd = epoll_create(1);
		writable = 0;
	} else if (strcmp(kind, "epoll_create1") == 0) {
		fd = epoll_create1(0);
		writable = 0;
	} else if (strcmp(kind, "memfd_create") == 0) {
		fd = memfd_create("fdlife", 0);
	} else if (strcmp(kind, "inotify_init") == 0) {
		fd = inotify_init();
		writable = 0;
	} else if (strcmp(kind, "inotify_init1") == 0) {
		fd = inotify_init1(0);
		writable = 0;
	} else if (strcmp(kind, "accept") == 0 || strcmp(kind, "accept4") == 0) {
		fd = kind[6] ? accept4(lst, NULL, NULL, SOCK_CLOEXEC) : accept(lst, NULL, NULL);
		cat = C_UNIX;
		type = SOCK_STREAM;
		family = AF_UNIX;
	} else if (strcmp(kind, "dup") == 0) {
		fd = dup(nul);
	} else if (strcmp(kind, "dup2") == 0) {
		fd = dup2(nul, x);
	} else if (strcmp(kind, "dup3") == 0) {
		fd = dup3(nul, x, 0);
	} else if (strcmp(kind, "F_DUPFD") == 0) {
		fd = fcntl(nul, F_DUPFD, 0);
	} else if (strcmp(kind, "fcntl64") == 0) {
		fd = fcntl64(nul, F_DUPFD, 0);
	} else if (strcmp(kind, "F_DUPFD_CLOEXEC") == 0) {
		fd = fcntl(nul, F_DUPFD_CLOEXEC, 0);
	} else if (strcmp(kind, "syscall_socket") == 0) {
		fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
		cat = C_UNIX;
		type = SOCK_STREAM;
		family = AF_UNIX;
		writable = 0;
	} else if (strcmp(kind, "opendir") == 0) {
		dir = opendir("/");
		fd = dir ? dirfd(dir) : -1;
		writable = 0;
	} else if (strcmp(kind, "mkstemp") == 0) {
		fd = mkstemp(tmpl);
		unlink(tmpl);
	} else if (strcmp(kind, "tmpfile") == 0) {
		fp = tmpfile();
		fd = fp ? fileno(fp) : -1;
	} else if (strcmp(kind, "popen") == 0) {
		fp = popen("exit 0", "r");
		fd = fp ? fileno(fp) : -1;
		writable = 0;
	} else {
		printf("FAIL unknown kind %s\n", kind);
		return 2;
	}
	(void)family;
	if (fd < 0)
		die(kind);
	if (fd != x) {
		printf("FAIL %s returned fd %d, not the stale number %d: cannot test\n", kind, fd, x);
		return 1;
	}
	char what[96];
	snprintf(what, sizeof(what), "%s reusing the number of a socket closed behind our back",
		 kind);
	if (cat == C_NONSOCK)
		expect_nonsock(what, fd);
	else if (cat == C_UNIX)
		expect_unix(what, fd, type);
	else {
		if (name_of(fd, &ss) != 0 || ss.ss_family != AF_INET ||
		    ((struct sockaddr_in *)&ss)->sin_port != 0)
			fail("%s: the new inet socket is not fresh (family %d)", what, ss.ss_family);
		int v;
		if (sockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &v) != 0 || v != AF_INET)
			fail("%s: SO_DOMAIN %d", what, v);
	}
	if (writable && write(fd, "x", 1) != 1)
		fail("%s: write: %s", what, ename(errno));
	/* The stale socket is gone, its file too. */
	expect_file(what, &S, SOCK_DGRAM, 0);
	ok(what);
	if (fp != NULL) {
		if (strcmp(kind, "popen") == 0)
			pclose(fp);
		else
			fclose(fp);
	} else if (dir != NULL) {
		closedir(dir);
	} else {
		close(fd);
	}
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0 && fds[i] != fd)
			close(fds[i]);
	if (lst >= 0) {
		close(lst);
		close(cli);
	}
	close(nul);
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ max */

static int cmd_max(unsigned long limit)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)limit + 256;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need) {
		struct rlimit want = {need, rl.rlim_max > need ? rl.rlim_max : need};
		if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
			printf("SKIP cannot raise RLIMIT_NOFILE to %lu (hard limit %lu): %s\n",
			       (unsigned long)need, (unsigned long)rl.rlim_max, ename(errno));
			return 77;
		}
	}
	int *fds = calloc(limit + 2, sizeof(int));
	if (fds == NULL)
		die("calloc");
	/* A listener and a client connected to it count as two. */
	struct sockaddr_storage L;
	int lst = bound_socket(AF_INET, SOCK_STREAM, host4, &L);
	if (lst < 0 || listen(lst, 4) != 0)
		die("listener");
	int cli = socket(AF_INET6, SOCK_STREAM, 0);
	if (cli < 0)
		die("client");
	unsigned long n = 2;
	int err = 0;
	while (n < limit) {
		int fd = socket((n & 1) ? AF_INET6 : AF_INET, (n & 2) ? SOCK_DGRAM : SOCK_STREAM, 0);
		if (fd < 0) {
			err = errno;
			break;
		}
		fds[n++] = fd;
	}
	printf("created %lu\n", n);
	if (n < limit) {
		fail("only %lu inet sockets could be created (%s), expected %lu", n, ename(err),
		     limit);
		return 1;
	}
	ok("as many sockets as the limit");
	errno = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 || errno != ENFILE)
		fail("socket beyond the limit of %lu: %s, expected ENFILE", limit,
		     fd >= 0 ? "success" : ename(errno));
	else
		ok("socket beyond the limit fails with ENFILE");
	/* Sockets of other families are not counted. */
	int ux = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ux < 0)
		fail("AF_UNIX socket at the limit: %s", ename(errno));
	else
		close(ux);
	/* accept beyond the limit: connect a client in place of another socket;
	 * the accepted socket is one too many. */
	if (limit > 2) {
		close(fds[n - 1]);
		int c2 = socket(AF_INET, SOCK_STREAM, 0);
		if (c2 < 0 || connect(c2, (struct sockaddr *)&L, sizeof(struct sockaddr_in)) != 0)
			fail("connect at the limit: %s", ename(errno));
		errno = 0;
		int a = accept(lst, NULL, NULL);
		if (a >= 0 || errno != ENFILE)
			fail("accept beyond the limit: %s, expected ENFILE",
			     a >= 0 ? "success" : ename(errno));
		else
			ok("accept beyond the limit fails with ENFILE");
		fds[n - 1] = c2;
	}
	/* One closed: one more fits, then no more. */
	close(cli);
	int fd2 = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd2 < 0)
		fail("socket after closing one at the limit: %s", ename(errno));
	else
		ok("closing one makes room for one");
	errno = 0;
	int fd3 = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd3 >= 0 || errno != ENFILE)
		fail("socket beyond the limit again: %s", fd3 >= 0 ? "success" : ename(errno));
	free(fds); /* the fds close at exit */
	return failures ? 1 : 0;
}

/* As many inet sockets as RLIMIT_NOFILE allows (at most n): all must succeed
 * when the wrapper's limit is above that; prints what the next one gives. */
static int cmd_many(unsigned long n)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur != RLIM_INFINITY && n > rl.rlim_cur - 64)
		n = rl.rlim_cur - 64;
	unsigned long i;
	for (i = 0; i < n; i++) {
		if (socket((i & 1) ? AF_INET6 : AF_INET, (i & 2) ? SOCK_DGRAM : SOCK_STREAM, 0) < 0) {
			fail("socket %lu of %lu: %s", i + 1, n, ename(errno));
			break;
		}
	}
	printf("created %lu\n", i);
	errno = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	printf("next: %s\n", fd >= 0 ? "OK" : ename(errno));
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && strcmp(argv[1], "dup") == 0) {
		host4 = argv[2];
		host6 = argv[3];
		return cmd_dup();
	}
	if (argc >= 7 && strcmp(argv[1], "churn") == 0) {
		host4 = argv[4];
		host6 = argv[5];
		return cmd_churn(strtoul(argv[2], NULL, 10), strtoull(argv[3], NULL, 10),
				 strtoul(argv[6], NULL, 10));
	}
	if (argc >= 5 && strcmp(argv[1], "reuse") == 0) {
		host4 = argv[3];
		host6 = argv[4];
		return cmd_reuse(argv[2]);
	}
	if (argc >= 4 && strcmp(argv[1], "max") == 0) {
		host4 = argv[3];
		return cmd_max(strtoul(argv[2], NULL, 10));
	}
	if (argc >= 3 && strcmp(argv[1], "many") == 0)
		return cmd_many(strtoul(argv[2], NULL, 10));
	fprintf(stderr, "usage: fdlife dup H4 H6 | churn STEPS SEED H4 H6 FILL | reuse KIND H4 H6 |"
			" max LIMIT H4\n");
	return 2;
}
