/*
 * progs.h - helpers shared by the C test programs of this directory.
 *
 * Each program is built alone (`cc ... tests/progs/X.c`); this header sits beside them, so
 * `#include "progs.h"` needs no -I.  Everything here is static inline: a program uses what
 * it needs and nothing else is emitted.  Include it after `#define _GNU_SOURCE` (the first
 * line of every program).
 *
 * A self-checking program (prints "ok <what>" / "FAIL <what>: <detail>", exits 1 if
 * anything failed) defines PROGS_SELF_CHECK before the #include to get fail(), ok(), die()
 * and the failure count.
 */
#ifndef PROGS_H
#define PROGS_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The name of errno value e ("ECONNREFUSED"), or "E<n>" where libc has none. */
static inline const char *ename(int e)
{
	static _Thread_local char buf[16];
	const char *n = strerrorname_np(e);
	if (n != NULL)
		return n;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

/* ------------------------------------------------------------------ addresses */

/* AF_INET6 if host is IPv6 text (it has a ':'), else AF_INET. */
static inline int family_of(const char *host)
{
	return strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
}

/* host (IPv4 or IPv6 text) and port as a socket address: its length, 0 if host is none. */
static inline socklen_t parse_addr(const char *host, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family_of(host) == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 ? sizeof(*in6) : 0;
	}
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? sizeof(*in) : 0;
}

/* parse_addr() where a bad host is a bad command line: "bad address HOST", exit 2. */
static inline socklen_t make_addr(const char *host, unsigned port, struct sockaddr_storage *ss)
{
	socklen_t len = parse_addr(host, port, ss);
	if (len == 0) {
		fprintf(stderr, "bad address %s\n", host);
		exit(2);
	}
	return len;
}

/* The host text (at most n bytes) and port of an IPv4/IPv6 address: 1; for another family
 * "family=N" and port 0: 0.  port may be NULL. */
static inline int host_port(const struct sockaddr_storage *ss, char *host, size_t n,
			    unsigned *port)
{
	unsigned p = 0;
	int inet = 1;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)n);
		p = ntohs(in->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)n);
		p = ntohs(in6->sin6_port);
	} else {
		snprintf(host, n, "family=%d", ss->ss_family);
		inet = 0;
	}
	if (port != NULL)
		*port = p;
	return inet;
}

/* The port of an IPv4/IPv6 address (0 for another family). */
static inline unsigned port_of(const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;
	host_port(ss, host, sizeof(host), &port);
	return port;
}

/* "HOST PORT", "unix:PATH" or "family=N"; returns buf. */
static inline const char *addr_text(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;
	if (host_port(ss, host, sizeof(host), &port))
		snprintf(buf, n, "%s %u", host, port);
	else if (ss->ss_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
		snprintf(buf, n, "unix:%.*s", (int)strnlen(un->sun_path, sizeof(un->sun_path)),
			 un->sun_path);
	}
	else
		snprintf(buf, n, "%s", host);
	return buf;
}

/* Same family, address and port (two addresses of another family count as the same). */
static inline int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ the wrapper's view */

/* Running under the socket wrapper: SOCKET_WRAPPER_DIR set and the library preloaded. */
static inline int wrapped(void)
{
	const char *dir = getenv("SOCKET_WRAPPER_DIR");
	const char *pre = getenv("LD_PRELOAD");
	return dir != NULL && *dir && pre != NULL && strstr(pre, "socket_wrapper") != NULL;
}

/* 1 if the socket file in SOCKET_WRAPPER_DIR of this emulated address (a socket of type)
 * exists, 0 if not, -1 on the kernel or for another family. */
static inline int sw_file_exists(const struct sockaddr_storage *ss, int type)
{
	if (!wrapped())
		return -1;
	unsigned iface, port;
	char kind;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;
		iface = ntohl(in->sin_addr.s_addr) & 0xff;
		port = ntohs(in->sin_port);
		kind = type == SOCK_STREAM ? 'T' : 'U';
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		iface = in6->sin6_addr.s6_addr[15];
		port = ntohs(in6->sin6_port);
		kind = type == SOCK_STREAM ? 'X' : 'Y';
	} else {
		return -1;
	}
	if (iface == 0) {
		const char *d = getenv("SOCKET_WRAPPER_DEFAULT_IFACE");
		iface = d != NULL && *d ? (unsigned)atoi(d) : 1;
	}
	char path[4200];
	snprintf(path, sizeof(path), "%s/%c%02X%04X", getenv("SOCKET_WRAPPER_DIR"), kind, iface,
		 port);
	struct stat st;
	return stat(path, &st) == 0;
}

/* Is fd a Unix socket (its inode listed in /proc/self/net/unix)? */
static inline int unix_backed(int fd)
{
	struct stat st;
	char line[1024];
	int found = 0;
	if (fstat(fd, &st) != 0)
		return 0;
	FILE *f = fopen("/proc/self/net/unix", "r");
	if (f == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		unsigned long ino = 0;
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &ino) == 1 && ino == st.st_ino)
			found = 1;
	}
	fclose(f);
	return found;
}

/* ------------------------------------------------------------------ streams */

/* Writes all n bytes (again after EINTR and short writes): 0, or -1 on an error. */
static inline int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Reads exactly n bytes: 1; 0 at EOF before them; -1 on an error. */
static inline int read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t k = read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k == 0 ? 0 : -1;
		p += k;
		n -= (size_t)k;
	}
	return 1;
}

/* Reads until EOF, an error or a full buffer: the count read. */
static inline size_t read_to_eof(int fd, void *buf, size_t size)
{
	size_t got = 0;
	while (got < size) {
		ssize_t k = read(fd, (char *)buf + got, size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	return got;
}

/* Writes back what fd reads until EOF or an error; buf (size bytes) is the scratch space. */
static inline void echo_stream(int fd, void *buf, size_t size)
{
	for (;;) {
		ssize_t n = read(fd, buf, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write_all(fd, buf, (size_t)n) != 0)
			return;
	}
}

/* ------------------------------------------------------------------ numbers */

/* FNV-1a: h (FNV_INIT to start) updated with n bytes. */
#define FNV_INIT 2166136261u
static inline uint32_t fnv(uint32_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* xorshift64: the next number of the sequence kept in *s (never 0). */
static inline uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ------------------------------------------------------------------ self-checking programs */

#ifdef PROGS_SELF_CHECK
#include <stdarg.h>
#include <stdatomic.h>

/* The count of fail() calls, from any thread. */
static atomic_int failures;

/* Prints "FAIL <message>" as one line (whole, flushed, whichever thread calls) and counts it. */
static inline void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	flockfile(stdout);
	fputs("FAIL ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	funlockfile(stdout);
	va_end(ap);
	failures++;
}

/* "ok <what>", only if nothing failed since the previous ok(). */
static inline void ok(const char *what)
{
	static int seen;
	if (failures == seen)
		printf("ok %s\n", what);
	seen = failures;
}

/* "FAIL <what>: <errno name>", exit 1. */
static inline void die(const char *what)
{
	printf("FAIL %s: %s\n", what, ename(errno));
	exit(1);
}
#endif

#endif
