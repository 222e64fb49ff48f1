/*
 * procenv - processes and variables (issue 3, items 7, 9, 11): posix_spawn,
 * fork+exec, vfork+exec and system() children re-read their environment;
 * exec closes CLOEXEC sockets; SOCKET_WRAPPER_* changed with setenv() at run
 * time take effect.  Self-checking ("ok ..." / "FAIL ...", exit 1).
 *
 *   procenv parent HOST OTHERDIR
 *       A listener on HOST (the wrapped default interface's address) and a
 *       SOCK_CLOEXEC socket; then children are started by each method with
 *       SOCKET_WRAPPER_DEFAULT_IFACE set to a different interface each; every
 *       child connects back and the listener must see it on that interface.
 *       A child given SOCKET_WRAPPER_DIR=OTHERDIR must find nobody listening.
 *   procenv child PORT CLOEXEC_FD HOST IFACE
 *       (started by parent) IFACE 0: expect ECONNREFUSED.
 *   procenv scenario HOST
 *       A raw socket, a bind to a foreign address, TCP and UDP on HOST:7.
 *   procenv setenv DIR1 DIR2 BADDIR
 *       Starts with SOCKET_WRAPPER_DIR unset, then setenv()s variables one by
 *       one.  Prints "MARK ..." lines on stderr around the debug-level steps.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGS_SELF_CHECK
#include "progs.h"

extern char **environ;

static const char *self;

/* The address text of interface n in the family of host (127 or 10.53.57 net). */
static void iface_text(const char *host, unsigned n, char *buf, size_t len)
{
	if (family_of(host) == AF_INET6) {
		snprintf(buf, len, "fd00::5357:5f%02x", n);
		struct in6_addr a; /* canonical form, as inet_ntop prints it */
		inet_pton(AF_INET6, buf, &a);
		inet_ntop(AF_INET6, &a, buf, (socklen_t)len);
	} else {
		const char *net = getenv("SOCKET_WRAPPER_IPV4_NETWORK");
		snprintf(buf, len, "%s.%u", net && strcmp(net, "10.53.57.0") == 0 ? "10.53.57" : "127.0.0",
			 n);
	}
}

static int enabled(void)
{
	bool (*fn)(void) = (bool (*)(void))dlsym(RTLD_DEFAULT, "socket_wrapper_enabled");
	return fn == NULL ? -1 : fn();
}

/* ------------------------------------------------------------------ child */

static int cmd_child(unsigned port, int cloexec_fd, const char *host, unsigned iface)
{
	errno = 0;
	if (fcntl(cloexec_fd, F_GETFD) != -1 || errno != EBADF)
		fail("child: the CLOEXEC socket fd %d survived exec", cloexec_fd);
	int s = socket(family_of(host), SOCK_STREAM, 0);
	if (s < 0) {
		fail("child: socket: %s", ename(errno));
		return 1;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(s, (struct sockaddr *)&ss, &len) != 0 || port_of(&ss) != 0 ||
	    ss.ss_family != family_of(host))
		fail("child: a new socket (fd %d) is not fresh", s);
	socklen_t alen = make_addr(host, port, &ss);
	int rc = connect(s, (struct sockaddr *)&ss, alen);
	if (iface == 0) {
		if (rc == 0 || errno != ECONNREFUSED)
			fail("child in another directory: connect gave %s, expected ECONNREFUSED",
			     rc == 0 ? "success" : ename(errno));
		return failures ? 1 : 0;
	}
	if (rc != 0) {
		fail("child: connect: %s", ename(errno));
		return 1;
	}
	char have[64], want[64], msg[160];
	len = sizeof(ss);
	getsockname(s, (struct sockaddr *)&ss, &len);
	host_port(&ss, have, sizeof(have), NULL);
	iface_text(host, iface, want, sizeof(want));
	if (strcmp(have, want) != 0)
		fail("child: its address is %s, expected %s (SOCKET_WRAPPER_DEFAULT_IFACE=%s)", have,
		     want, getenv("SOCKET_WRAPPER_DEFAULT_IFACE"));
	int n = snprintf(msg, sizeof(msg), "hello from %s", have);
	if (write(s, msg, (size_t)n) != n)
		fail("child: write: %s", ename(errno));
	close(s);
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ parent */

static char **env_with(const char *name, const char *value)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **env = calloc(n + 2, sizeof(char *));
	size_t k = 0, nl = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (!(strncmp(environ[i], name, nl) == 0 && environ[i][nl] == '='))
			env[k++] = environ[i];
	char *entry = malloc(nl + strlen(value) + 2);
	sprintf(entry, "%s=%s", name, value);
	env[k++] = entry;
	env[k] = NULL;
	return env;
}

static void free_env(char **env)
{
	size_t i = 0;
	while (env[i + 1] != NULL)
		i++;
	free(env[i]); /* the one added */
	free(env);
}

static int accept_child(int lst, const char *host, unsigned iface, const char *how)
{
	struct pollfd p = {.fd = lst, .events = POLLIN};
	if (poll(&p, 1, 20000) != 1) {
		fail("%s: the child did not connect within 20 s", how);
		return -1;
	}
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	int a = accept(lst, (struct sockaddr *)&from, &len);
	if (a < 0) {
		fail("%s: accept: %s", how, ename(errno));
		return -1;
	}
	char have[64], want[64], msg[160] = {0}, expect[160];
	host_port(&from, have, sizeof(have), NULL);
	iface_text(host, iface, want, sizeof(want));
	if (strcmp(have, want) != 0)
		fail("%s: the child connected from %s, expected %s", how, have, want);
	read_to_eof(a, msg, sizeof(msg) - 1);
	snprintf(expect, sizeof(expect), "hello from %s", want);
	if (strcmp(msg, expect) != 0)
		fail("%s: the child said \"%s\"", how, msg);
	close(a);
	return 0;
}

static void reap(pid_t pid, const char *how)
{
	int status;
	if (pid <= 0) {
		fail("%s: could not start the child: %s", how, ename(errno));
		return;
	}
	for (int i = 0; i < 200; i++) { /* 20 s */
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				fail("%s: the child ended with status 0x%x", how, status);
			return;
		}
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail("%s: the child did not exit within 20 s", how);
}

static int cmd_parent(const char *host, const char *otherdir)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(host, 0, &ss);
	int lst = socket(family_of(host), SOCK_STREAM, 0);
	if (lst < 0 || bind(lst, (struct sockaddr *)&ss, len) != 0 || listen(lst, 16) != 0) {
		printf("FAIL listener: %s\n", ename(errno));
		return 1;
	}
	len = sizeof(ss);
	getsockname(lst, (struct sockaddr *)&ss, &len);
	char port[16], cfd[16];
	snprintf(port, sizeof(port), "%u", port_of(&ss));
	/* A CLOEXEC socket, bound: after exec the child must not have it. */
	int cx = socket(family_of(host), SOCK_DGRAM | SOCK_CLOEXEC, 0);
	make_addr(host, 0, &ss);
	if (cx < 0 || bind(cx, (struct sockaddr *)&ss, len) != 0)
		fail("CLOEXEC socket: %s", ename(errno));
	snprintf(cfd, sizeof(cfd), "%d", cx);
	const char *orig_iface = getenv("SOCKET_WRAPPER_DEFAULT_IFACE");
	char orig[16];
	snprintf(orig, sizeof(orig), "%s", orig_iface ? orig_iface : "1");

	static const char *methods[] = {"posix_spawn with envp", "posix_spawnp after setenv",
					"fork + execve with envp", "fork + execv after setenv",
					"vfork + execve", "system() after setenv"};
	for (unsigned m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		unsigned iface = 30 + m;
		char ifs[8];
		snprintf(ifs, sizeof(ifs), "%u", iface);
		char *argv[] = {(char *)self, "child", port, cfd, (char *)host, ifs, NULL};
		char **envp = env_with("SOCKET_WRAPPER_DEFAULT_IFACE", ifs);
		pid_t pid = -1;
		switch (m) {
		case 0:
			if (posix_spawn(&pid, self, NULL, NULL, argv, envp) != 0)
				pid = -1;
			break;
		case 1:
			setenv("SOCKET_WRAPPER_DEFAULT_IFACE", ifs, 1);
			if (posix_spawnp(&pid, self, NULL, NULL, argv, environ) != 0)
				pid = -1;
			break;
		case 2:
			pid = fork();
			if (pid == 0) {
				execve(self, argv, envp);
				_exit(127);
			}
			break;
		case 3:
			setenv("SOCKET_WRAPPER_DEFAULT_IFACE", ifs, 1);
			pid = fork();
			if (pid == 0) {
				execv(self, argv);
				_exit(127);
			}
			break;
		case 4:
			pid = vfork();
			if (pid == 0) {
				execve(self, argv, envp);
				_exit(127);
			}
			break;
		case 5: {
			setenv("SOCKET_WRAPPER_DEFAULT_IFACE", ifs, 1);
			char cmd[1024];
			snprintf(cmd, sizeof(cmd), "exec '%s' child %s %s '%s' %s &", self, port, cfd,
				 host, ifs);
			/* the child runs in the background; the shell's exit status is 0 */
			if (system(cmd) != 0)
				fail("system: %s", ename(errno));
			pid = 0;
			break;
		}
		}
		setenv("SOCKET_WRAPPER_DEFAULT_IFACE", orig, 1);
		accept_child(lst, host, iface, methods[m]);
		if (pid != 0)
			reap(pid, methods[m]);
		free_env(envp);
		ok(methods[m]);
	}

	/* A child in another directory finds nobody listening there. */
	char *argv[] = {(char *)self, "child", port, cfd, (char *)host, "0", NULL};
	char **envp = env_with("SOCKET_WRAPPER_DIR", otherdir);
	pid_t pid;
	if (posix_spawn(&pid, self, NULL, NULL, argv, envp) != 0)
		pid = -1;
	reap(pid, "posix_spawn with another SOCKET_WRAPPER_DIR");
	free_env(envp);
	ok("posix_spawn with another SOCKET_WRAPPER_DIR");

	/* The parent itself is still on its interface. */
	int c = socket(family_of(host), SOCK_STREAM, 0);
	len = make_addr(host, port_of(&ss), &ss);
	len = sizeof(ss);
	struct sockaddr_storage me;
	socklen_t mlen = make_addr(host, (unsigned)atoi(port), &me);
	if (connect(c, (struct sockaddr *)&me, mlen) != 0)
		fail("parent connect: %s", ename(errno));
	mlen = sizeof(me);
	getsockname(c, (struct sockaddr *)&me, &mlen);
	char have[64], want[64];
	host_port(&me, have, sizeof(have), NULL);
	iface_text(host, (unsigned)atoi(orig), want, sizeof(want));
	if (strcmp(have, want) != 0)
		fail("parent after setenv back: %s, expected %s", have, want);
	close(c);
	close(cx);
	close(lst);
	ok("the parent keeps its own interface");
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ setenv */

static int new_listener(const char *host, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(host, port, &ss);
	int s = socket(family_of(host), SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, 4) != 0) {
		fail("listener on %s %u: %s", host, port, ename(errno));
		return -1;
	}
	return s;
}

static bool file_exists(const char *dir, const char *name)
{
	char path[4200];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/* connect to host:7 and check the local address; accept on lst and check the peer. */
static void connect_as(int lst, const char *host, const char *want_local, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(host, 7, &ss);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, len) != 0) {
		fail("%s: connect to %s 7: %s", what, host, ename(errno));
		return;
	}
	char have[64];
	len = sizeof(ss);
	getsockname(c, (struct sockaddr *)&ss, &len);
	host_port(&ss, have, sizeof(have), NULL);
	if (strcmp(have, want_local) != 0)
		fail("%s: connected from %s, expected %s", what, have, want_local);
	len = sizeof(ss);
	int a = accept(lst, (struct sockaddr *)&ss, &len);
	if (a < 0)
		fail("%s: accept: %s", what, ename(errno));
	host_port(&ss, have, sizeof(have), NULL);
	if (strcmp(have, want_local) != 0)
		fail("%s: accept saw %s, expected %s", what, have, want_local);
	close(a);
	close(c);
}

static int cmd_setenv(const char *dir1, const char *dir2, const char *baddir)
{
	int s, e;
	if (getenv("SOCKET_WRAPPER_DIR") != NULL) {
		printf("FAIL start with SOCKET_WRAPPER_DIR unset\n");
		return 2;
	}
	/* 1. unset: inert */
	if ((e = enabled()) != 0)
		fail("socket_wrapper_enabled() is %d with SOCKET_WRAPPER_DIR unset", e);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || unix_backed(s))
		fail("with SOCKET_WRAPPER_DIR unset, socket(AF_INET) is %s",
		     s < 0 ? ename(errno) : "a Unix socket");
	close(s);
	ok("unset: inert");

	/* 2. setenv DIR: wrapped from the next socket on */
	setenv("SOCKET_WRAPPER_DIR", dir1, 1);
	if ((e = enabled()) != 1)
		fail("socket_wrapper_enabled() is %d after setenv(SOCKET_WRAPPER_DIR)", e);
	int l1 = new_listener("127.0.0.10", 7);
	if (l1 >= 0 && !unix_backed(l1))
		fail("after setenv(SOCKET_WRAPPER_DIR) socket(AF_INET) is not a Unix socket");
	if (!file_exists(dir1, "T0A0007"))
		fail("no T0A0007 in the first directory");
	ok("setenv SOCKET_WRAPPER_DIR");

	/* 3. another directory: the same address is free there */
	setenv("SOCKET_WRAPPER_DIR", dir2, 1);
	int l2 = new_listener("127.0.0.10", 7);
	if (!file_exists(dir2, "T0A0007"))
		fail("no T0A0007 in the second directory");
	if (!file_exists(dir1, "T0A0007"))
		fail("T0A0007 of the first directory vanished");
	ok("setenv SOCKET_WRAPPER_DIR to another directory");

	/* 4. default interface */
	setenv("SOCKET_WRAPPER_DEFAULT_IFACE", "20", 1);
	connect_as(l2, "127.0.0.10", "127.0.0.20", "SOCKET_WRAPPER_DEFAULT_IFACE=20");
	ok("setenv SOCKET_WRAPPER_DEFAULT_IFACE");

	/* 5. network */
	setenv("SOCKET_WRAPPER_IPV4_NETWORK", "10.53.57.0", 1);
	connect_as(l2, "10.53.57.10", "10.53.57.20", "SOCKET_WRAPPER_IPV4_NETWORK=10.53.57.0");
	unsetenv("SOCKET_WRAPPER_IPV4_NETWORK");
	connect_as(l2, "127.0.0.10", "127.0.0.20", "SOCKET_WRAPPER_IPV4_NETWORK unset again");
	ok("setenv SOCKET_WRAPPER_IPV4_NETWORK");

	/* 6. max sockets: l1 and l2 are live; allow one more */
	setenv("SOCKET_WRAPPER_MAX_SOCKETS", "3", 1);
	int a = socket(AF_INET, SOCK_DGRAM, 0);
	errno = 0;
	int b = socket(AF_INET6, SOCK_DGRAM, 0);
	if (a < 0 || b >= 0 || errno != ENFILE)
		fail("SOCKET_WRAPPER_MAX_SOCKETS=3 with 2 live: third %s, fourth %s", a < 0 ? "failed" : "ok",
		     b >= 0 ? "ok" : ename(errno));
	unsetenv("SOCKET_WRAPPER_MAX_SOCKETS");
	b = socket(AF_INET6, SOCK_DGRAM, 0);
	if (b < 0)
		fail("after unsetenv(SOCKET_WRAPPER_MAX_SOCKETS): %s", ename(errno));
	close(a);
	close(b);
	ok("setenv SOCKET_WRAPPER_MAX_SOCKETS");

	/* 7. debug level: lines only between the marks */
	fprintf(stderr, "MARK debuglevel 3\n");
	setenv("SOCKET_WRAPPER_DEBUGLEVEL", "3", 1);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	close(s);
	unsetenv("SOCKET_WRAPPER_DEBUGLEVEL");
	s = socket(AF_INET, SOCK_DGRAM, 0); /* reads the environment again: level 0 */
	fprintf(stderr, "MARK debuglevel unset\n");
	close(s);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	close(s);
	ok("setenv SOCKET_WRAPPER_DEBUGLEVEL");

	/* 8. a bad directory: fail closed, loudly */
	fprintf(stderr, "MARK bad dir\n");
	setenv("SOCKET_WRAPPER_DIR", baddir, 1);
	errno = 0;
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s >= 0 || errno != ENOENT)
		fail("SOCKET_WRAPPER_DIR=%s (missing): socket gave %s, expected ENOENT", baddir,
		     s >= 0 ? "success" : ename(errno));
	if ((e = enabled()) != 0)
		fail("socket_wrapper_enabled() is %d with a missing SOCKET_WRAPPER_DIR", e);
	fprintf(stderr, "MARK bad dir done\n");
	setenv("SOCKET_WRAPPER_DIR", dir2, 1);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		fail("SOCKET_WRAPPER_DIR set back: %s", ename(errno));
	close(s);
	ok("setenv SOCKET_WRAPPER_DIR to a missing directory and back");

	/* 9. unset again: inert, socket_wrapper_enabled() false */
	unsetenv("SOCKET_WRAPPER_DIR");
	if ((e = enabled()) != 0)
		fail("socket_wrapper_enabled() is %d after unsetenv(SOCKET_WRAPPER_DIR)", e);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || unix_backed(s))
		fail("after unsetenv, socket(AF_INET) is %s", s < 0 ? ename(errno) : "a Unix socket");
	close(s);
	ok("unsetenv SOCKET_WRAPPER_DIR");
	setenv("SOCKET_WRAPPER_DIR", dir1, 1);
	close(l1);
	setenv("SOCKET_WRAPPER_DIR", dir2, 1);
	close(l2);
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ scenario */

/* A little of everything, for the debug-level and variable tests: a raw
 * socket (not emulated), a bind to a foreign address, a TCP exchange and a
 * UDP datagram on HOST:7.  "socket: OK" or "socket: <errno>" first. */
static int cmd_scenario(const char *host)
{
	struct sockaddr_storage ss, foreign;
	printf("pid %d\n", (int)getpid());
	int l = socket(family_of(host), SOCK_STREAM, 0);
	printf("socket: %s\n", l >= 0 ? "OK" : ename(errno));
	if (l < 0)
		return 1;
	int r = socket(family_of(host), SOCK_RAW, IPPROTO_ICMP);
	if (r >= 0)
		close(r);
	socklen_t len = make_addr(family_of(host) == AF_INET ? "192.0.2.1" : "2001:db8::1", 7,
				  &foreign);
	int f = socket(family_of(host), SOCK_DGRAM, 0);
	if (bind(f, (struct sockaddr *)&foreign, len) == 0)
		fail("bind to a foreign address succeeded");
	close(f);
	len = make_addr(host, 7, &ss);
	if (bind(l, (struct sockaddr *)&ss, len) != 0 || listen(l, 4) != 0)
		fail("listen on %s 7: %s", host, ename(errno));
	int c = socket(family_of(host), SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&ss, len) != 0)
		fail("connect: %s", ename(errno));
	int a = accept(l, NULL, NULL);
	char buf[8];
	if (a < 0 || write(c, "ping", 4) != 4 || read(a, buf, sizeof(buf)) != 4)
		fail("tcp exchange: %s", ename(errno));
	close(a);
	close(c);
	close(l);
	int u = socket(family_of(host), SOCK_DGRAM, 0);
	if (bind(u, (struct sockaddr *)&ss, len) != 0 ||
	    sendto(u, "x", 1, 0, (struct sockaddr *)&ss, len) != 1 ||
	    recv(u, buf, sizeof(buf), 0) != 1)
		fail("udp to itself: %s", ename(errno));
	close(u);
	ok("scenario");
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	self = argv[0];
	if (argc == 4 && strcmp(argv[1], "parent") == 0)
		return cmd_parent(argv[2], argv[3]);
	if (argc == 6 && strcmp(argv[1], "child") == 0)
		return cmd_child((unsigned)atoi(argv[2]), atoi(argv[3]), argv[4],
				 (unsigned)atoi(argv[5]));
	if (argc == 3 && strcmp(argv[1], "scenario") == 0)
		return cmd_scenario(argv[2]);
	if (argc == 5 && strcmp(argv[1], "setenv") == 0)
		return cmd_setenv(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: procenv parent HOST OTHERDIR | child PORT FD HOST IFACE | "
			"setenv DIR1 DIR2 BADDIR\n");
	return 2;
}
