/*
 * libcvar - the libc variants programs really call (issue 3, item 10):
 * fcntl64, accept4, bindresvport, the _FORTIFY_SOURCE entry points
 * (__recvfrom_chk, __recv_chk, __read_chk: build with -O2
 * -D_FORTIFY_SOURCE=2), and socket calls made with syscall(SYS_...).
 * Self-checking ("ok ..." / "FAIL ...", exit 1); the same checks hold on
 * kernel loopback.
 *
 *   libcvar CHECK H4 H6      CHECK: fcntl64 accept4 bindresvport fortify_udp
 *                            fortify_tcp syscall_tcp syscall_udp
 *   H4 is also where a wildcard bind lands (the default interface).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define PROGS_SELF_CHECK
#include "progs.h"

/* Sun RPC's header is gone from glibc; the function is still there. */
int bindresvport(int sd, struct sockaddr_in *sin);

static const char *host4, *host6;

static void expect_same(const char *what, const struct sockaddr_storage *have,
			const struct sockaddr_storage *want)
{
	char a[96], b[96];
	addr_text(have, a, sizeof(a));
	addr_text(want, b, sizeof(b));
	if (strcmp(a, b) != 0)
		fail("%s: %s, expected %s", what, a, b);
}

/* An unconnected UDP socket bound implicitly reads as 0.0.0.0:port (or
 * [::]:port); its datagrams come from host:port. */
static void sender_of(int fd, const char *h, struct sockaddr_storage *ss);

static void name(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	if (getsockname(fd, (struct sockaddr *)ss, &len) != 0)
		fail("getsockname(%d): %s", fd, ename(errno));
}

static void peer(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	if (getpeername(fd, (struct sockaddr *)ss, &len) != 0)
		fail("getpeername(%d): %s", fd, ename(errno));
}

static void sender_of(int fd, const char *h, struct sockaddr_storage *ss)
{
	name(fd, ss);
	make_addr(h, port_of(ss), ss);
}

static int listener(const char *h, struct sockaddr_storage *L)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(h, 0, &ss);
	int s = socket(family_of(h), SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&ss, len) != 0 || listen(s, 8) != 0)
		die("listener");
	name(s, L);
	return s;
}

static int connect_to(const struct sockaddr_storage *L)
{
	int c = socket(L->ss_family, SOCK_STREAM, 0);
	socklen_t len = L->ss_family == AF_INET ? sizeof(struct sockaddr_in)
						 : sizeof(struct sockaddr_in6);
	if (c < 0 || connect(c, (const struct sockaddr *)L, len) != 0)
		die("connect");
	return c;
}

/* ------------------------------------------------------------------ fcntl64 */

static void check_fcntl64(void)
{
	struct sockaddr_storage L, ss;
	int s = listener(host4, &L);
	int d = fcntl64(s, F_DUPFD, 100);
	int d2 = fcntl64(s, F_DUPFD_CLOEXEC, 200);
	if (d < 100 || d2 < 200)
		fail("fcntl64 F_DUPFD: %d %d (%s)", d, d2, ename(errno));
	name(d, &ss);
	expect_same("fcntl64(F_DUPFD) copy", &ss, &L);
	name(d2, &ss);
	expect_same("fcntl64(F_DUPFD_CLOEXEC) copy", &ss, &L);
	int v = 0;
	socklen_t vl = sizeof(v);
	if (getsockopt(d, SOL_SOCKET, SO_DOMAIN, &v, &vl) != 0 || v != AF_INET)
		fail("SO_DOMAIN of the fcntl64 copy: %d", v);
	if (!(fcntl64(d2, F_GETFD) & FD_CLOEXEC) || (fcntl64(d, F_GETFD) & FD_CLOEXEC))
		fail("fcntl64 F_GETFD: FD_CLOEXEC wrong");
	int fl = fcntl64(s, F_GETFL);
	if (fl < 0 || fcntl64(s, F_SETFL, fl | O_NONBLOCK) != 0)
		fail("fcntl64 F_SETFL: %s", ename(errno));
	errno = 0;
	if (accept(d, NULL, NULL) != -1 || (errno != EAGAIN && errno != EWOULDBLOCK))
		fail("accept on a listener made non-blocking with fcntl64: %s", ename(errno));
	close(s);
	close(d);
	if (sw_file_exists(&L, SOCK_STREAM) == 0)
		fail("the listener's file vanished while an fcntl64 copy is open");
	int c = connect_to(&L);
	int a = accept(d2, NULL, NULL);
	if (a < 0)
		fail("accept on the remaining fcntl64 copy: %s", ename(errno));
	close(a);
	close(c);
	close(d2);
	if (sw_file_exists(&L, SOCK_STREAM) == 1)
		fail("the listener's file is left after closing every copy");
	ok("fcntl64");
}

/* ------------------------------------------------------------------ accept4 */

static void check_accept4(const char *h)
{
	struct sockaddr_storage L, C, from, ss;
	char what[64];
	int s = listener(h, &L);
	socklen_t full = family_of(h) == AF_INET ? sizeof(struct sockaddr_in)
					       : sizeof(struct sockaddr_in6);
	/* flags */
	int c = connect_to(&L);
	name(c, &C);
	socklen_t len = sizeof(from);
	memset(&from, 0, sizeof(from));
	int a = accept4(s, (struct sockaddr *)&from, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	snprintf(what, sizeof(what), "accept4 %s", h);
	if (a < 0)
		die(what);
	if (len != full)
		fail("%s: address length %u, expected %u", what, len, full);
	expect_same(what, &from, &C);
	if (!(fcntl(a, F_GETFL) & O_NONBLOCK) || !(fcntl(a, F_GETFD) & FD_CLOEXEC))
		fail("%s: SOCK_NONBLOCK|SOCK_CLOEXEC not applied", what);
	peer(a, &ss);
	expect_same("getpeername of the accept4ed socket", &ss, &C);
	name(a, &ss);
	expect_same("getsockname of the accept4ed socket", &ss, &L);
	errno = 0;
	char b;
	if (read(a, &b, 1) != -1 || errno != EAGAIN)
		fail("%s: non-blocking read gave %s", what, ename(errno));
	close(a);
	close(c);
	/* no flags, a short address buffer: truncated, full length reported */
	c = connect_to(&L);
	name(c, &C);
	unsigned char small[8];
	memset(small, 0xee, sizeof(small));
	len = sizeof(small);
	a = accept4(s, (struct sockaddr *)small, &len, 0);
	if (a < 0)
		die("accept4 short");
	if (len != full)
		fail("accept4 with an 8-byte buffer: length %u, expected %u", len, full);
	if (memcmp(small, &C, sizeof(small)) != 0)
		fail("accept4 with an 8-byte buffer: the bytes are not the address's first 8");
	if ((fcntl(a, F_GETFL) & O_NONBLOCK) || (fcntl(a, F_GETFD) & FD_CLOEXEC))
		fail("accept4(0) set flags");
	close(a);
	close(c);
	/* NULL address */
	c = connect_to(&L);
	a = accept4(s, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0)
		fail("accept4 with a NULL address: %s", ename(errno));
	else
		close(a);
	close(c);
	close(s);
	ok(what);
}

/* ------------------------------------------------------------------ bindresvport */

static void check_bindresvport(int type)
{
	struct sockaddr_storage ss;
	struct sockaddr_in sin;
	char what[64];
	snprintf(what, sizeof(what), "bindresvport %s", type == SOCK_STREAM ? "tcp" : "udp");

	/* NULL: the wildcard address, a port from 600 to 1023 */
	int s = socket(AF_INET, type, 0);
	if (s < 0 || bindresvport(s, NULL) != 0) {
		fail("%s(NULL): %s", what, ename(errno));
		return;
	}
	name(s, &ss);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	unsigned p1 = ntohs(in->sin_port);
	if (ss.ss_family != AF_INET || in->sin_addr.s_addr != htonl(INADDR_ANY) || p1 < 600 ||
	    p1 > 1023) {
		char t[96];
		fail("%s(NULL): bound to %s", what, addr_text(&ss, t, sizeof(t)));
	}
	if (sw_file_exists(&ss, type) == 0)
		fail("%s(NULL): no socket file for port %u", what, p1);
	/* the wildcard is reachable on the default interface */
	if (type == SOCK_STREAM) {
		struct sockaddr_storage to;
		make_addr(host4, p1, &to);
		listen(s, 2);
		int c = connect_to(&to);
		int a = accept(s, NULL, NULL);
		if (a < 0)
			fail("%s: connect to %s:%u: %s", what, host4, p1, ename(errno));
		close(a);
		close(c);
	}
	/* With an address: that address, and the port written back. */
	int s2 = socket(AF_INET, type, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, host4, &sin.sin_addr);
	if (s2 < 0 || bindresvport(s2, &sin) != 0) {
		fail("%s(%s): %s", what, host4, ename(errno));
	} else {
		name(s2, &ss);
		unsigned p2 = ntohs(in->sin_port);
		char want[64], t[96];
		snprintf(want, sizeof(want), "%s %u", host4, p2);
		if (strcmp(addr_text(&ss, t, sizeof(t)), want) != 0 || p2 < 600 || p2 > 1023 || p2 == p1)
			fail("%s(%s): bound to %s (the first got %u)", what, host4, t, p1);
		if (ntohs(sin.sin_port) != p2)
			fail("%s: port %u written back, bound to %u", what, ntohs(sin.sin_port), p2);
		if (sw_file_exists(&ss, type) == 0)
			fail("%s: no socket file for %s", what, want);
	}
	close(s);
	close(s2);
	ok(what);
}

/* ------------------------------------------------------------------ fortify */

/* Not constants: the fortified wrappers then call the _chk entry points. */
static volatile size_t want_len = 64;

static void check_fortify_udp(const char *h)
{
	struct sockaddr_storage U, C, from;
	char what[64];
	snprintf(what, sizeof(what), "fortified recvfrom/recv/read on udp %s", h);
	socklen_t len = make_addr(h, 0, &U);
	int u = socket(family_of(h), SOCK_DGRAM, 0);
	int c = socket(family_of(h), SOCK_DGRAM, 0);
	if (u < 0 || c < 0 || bind(u, (struct sockaddr *)&U, len) != 0)
		die("udp sockets");
	name(u, &U);
	for (int i = 0; i < 3; i++)
		if (sendto(c, "datagram", 8, 0, (struct sockaddr *)&U, len) != 8)
			fail("sendto: %s", ename(errno));
	sender_of(c, h, &C); /* implicitly bound by the first send */
	char buf[64];
	socklen_t flen = sizeof(from);
	memset(&from, 0, sizeof(from));
	ssize_t n = recvfrom(u, buf, want_len, 0, (struct sockaddr *)&from, &flen); /* __recvfrom_chk */
	if (n != 8 || memcmp(buf, "datagram", 8) != 0)
		fail("%s: recvfrom gave %zd", what, n);
	expect_same("__recvfrom_chk source address", &from, &C);
	if (flen != (family_of(h) == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
		fail("__recvfrom_chk address length %u", flen);
	n = recv(u, buf, want_len, 0); /* __recv_chk */
	if (n != 8 || memcmp(buf, "datagram", 8) != 0)
		fail("%s: recv (__recv_chk) gave %zd", what, n);
	n = read(u, buf, want_len); /* __read_chk */
	if (n != 8 || memcmp(buf, "datagram", 8) != 0)
		fail("%s: read (__read_chk) gave %zd", what, n);
	close(u);
	close(c);
	ok(what);
}

static void check_fortify_tcp(const char *h)
{
	struct sockaddr_storage L, from;
	char what[64];
	snprintf(what, sizeof(what), "fortified recvfrom/recv/read on tcp %s", h);
	int s = listener(h, &L);
	int c = connect_to(&L);
	int a = accept(s, NULL, NULL);
	if (a < 0)
		die("accept");
	char buf[64];
	if (write(c, "0123456789", 10) != 10)
		fail("write: %s", ename(errno));
	socklen_t flen = sizeof(from);
	memset(&from, 0x55, sizeof(from));
	ssize_t n = recvfrom(a, buf, want_len > 4 ? 4 : want_len, 0, (struct sockaddr *)&from,
			     &flen);
	if (n != 4 || memcmp(buf, "0123", 4) != 0)
		fail("%s: recvfrom gave %zd", what, n);
	if (flen != 0)
		fail("%s: recvfrom on TCP reported an address of length %u (Linux: 0)", what, flen);
	n = recv(a, buf, want_len > 3 ? 3 : want_len, 0);
	if (n != 3 || memcmp(buf, "456", 3) != 0)
		fail("%s: recv gave %zd", what, n);
	n = read(a, buf, want_len);
	if (n != 3 || memcmp(buf, "789", 3) != 0)
		fail("%s: read gave %zd", what, n);
	close(c);
	n = read(a, buf, want_len);
	if (n != 0)
		fail("%s: no EOF", what);
	close(a);
	close(s);
	ok(what);
}

/* ------------------------------------------------------------------ syscall */

static void check_syscall_tcp(const char *h)
{
	struct sockaddr_storage L, L2, C, from, ss;
	char what[64];
	snprintf(what, sizeof(what), "syscall() tcp %s", h);
	int fam = family_of(h);
	socklen_t len = make_addr(h, 0, &ss);
	int l = (int)syscall(SYS_socket, fam, SOCK_STREAM, 0);
	if (l < 0)
		die("SYS_socket");
	if (unix_backed(l) != wrapped())
		fail("%s: SYS_socket gave %s socket", what, unix_backed(l) ? "a Unix" : "a kernel inet");
	if (syscall(SYS_bind, l, &ss, len) != 0 || syscall(SYS_listen, l, 8) != 0)
		fail("%s: SYS_bind/SYS_listen: %s", what, ename(errno));
	socklen_t ll = sizeof(L);
	if (syscall(SYS_getsockname, l, &L, &ll) != 0)
		fail("%s: SYS_getsockname: %s", what, ename(errno));
	name(l, &L2);
	expect_same("SYS_getsockname vs getsockname", &L, &L2);
	if (sw_file_exists(&L, SOCK_STREAM) == 0)
		fail("%s: no socket file after SYS_bind", what);

	int c = (int)syscall(SYS_socket, fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (syscall(SYS_connect, c, &L, len) != 0)
		fail("%s: SYS_connect: %s", what, ename(errno));
	name(c, &C);
	socklen_t flen = sizeof(from);
	int a = (int)syscall(SYS_accept4, l, &from, &flen, SOCK_CLOEXEC);
	if (a < 0)
		die("SYS_accept4");
	expect_same("SYS_accept4 peer address", &from, &C);
	flen = sizeof(ss);
	if (syscall(SYS_getpeername, a, &ss, &flen) != 0)
		fail("SYS_getpeername: %s", ename(errno));
	expect_same("SYS_getpeername", &ss, &C);
	flen = sizeof(ss);
	syscall(SYS_getpeername, c, &ss, &flen);
	expect_same("SYS_getpeername of the client", &ss, &L);
	int on = 1, v = 0;
	socklen_t vl = sizeof(v);
	if (syscall(SYS_setsockopt, c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
	    syscall(SYS_getsockopt, c, IPPROTO_TCP, TCP_NODELAY, &v, &vl) != 0 || v == 0)
		fail("SYS_setsockopt/SYS_getsockopt TCP_NODELAY: %s v=%d", ename(errno), v);
	vl = sizeof(v);
	if (syscall(SYS_getsockopt, a, SOL_SOCKET, SO_DOMAIN, &v, &vl) != 0 || v != fam)
		fail("SYS_getsockopt SO_DOMAIN: %d", v);
	char buf[64];
	if (syscall(SYS_sendto, c, "abc", 3, 0, NULL, 0) != 3 ||
	    syscall(SYS_recvfrom, a, buf, sizeof(buf), 0, NULL, NULL) != 3)
		fail("SYS_sendto/SYS_recvfrom on tcp: %s", ename(errno));
	struct iovec iov = {.iov_base = "defg", .iov_len = 4};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (syscall(SYS_sendmsg, c, &m, 0) != 4)
		fail("SYS_sendmsg: %s", ename(errno));
	struct iovec riov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr rm = {.msg_iov = &riov, .msg_iovlen = 1};
	if (syscall(SYS_recvmsg, a, &rm, 0) != 4 || memcmp(buf, "defg", 4) != 0)
		fail("SYS_recvmsg: %s", ename(errno));
	if (syscall(SYS_write, c, "hij", 3) != 3 || read(a, buf, 3) != 3)
		fail("SYS_write: %s", ename(errno));
	/* dup family through syscall() share the identity */
	int d1 = (int)syscall(SYS_dup, a);
	int d2 = (int)syscall(SYS_dup3, a, 90, 0);
	int d3 = (int)syscall(SYS_fcntl, a, F_DUPFD, 100);
	int dd[3] = {d1, d2, d3};
	for (int i = 0; i < 3; i++) {
		if (dd[i] < 0) {
			fail("syscall dup %d: %s", i, ename(errno));
			continue;
		}
		peer(dd[i], &ss);
		expect_same("getpeername of a syscall() dup", &ss, &C);
	}
	/* SYS_accept */
	int c2 = (int)syscall(SYS_socket, fam, SOCK_STREAM, 0);
	syscall(SYS_connect, c2, &L, len);
	name(c2, &C);
	flen = sizeof(from);
	int a2 = (int)syscall(SYS_accept, l, &from, &flen);
	if (a2 < 0)
		fail("SYS_accept: %s", ename(errno));
	expect_same("SYS_accept peer address", &from, &C);
	/* SYS_close drops the identity: the listener's file goes away */
	int fds[] = {a, d1, d2, d3, c, a2, c2};
	for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0 && syscall(SYS_close, fds[i]) != 0)
			fail("SYS_close: %s", ename(errno));
	syscall(SYS_close, l);
	if (sw_file_exists(&L, SOCK_STREAM) == 1)
		fail("%s: the listener's file is left after SYS_close", what);
	/* SYS_socketpair goes through */
	int sp[2];
	if (syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, sp) != 0)
		fail("SYS_socketpair: %s", ename(errno));
	else {
		close(sp[0]);
		close(sp[1]);
	}
	ok(what);
}

static void check_syscall_udp(const char *h)
{
	struct sockaddr_storage U, C, from;
	char what[64], buf[64];
	snprintf(what, sizeof(what), "syscall() udp %s", h);
	int fam = family_of(h);
	socklen_t len = make_addr(h, 0, &U);
	int u = (int)syscall(SYS_socket, fam, SOCK_DGRAM, 0);
	int c = (int)syscall(SYS_socket, fam, SOCK_DGRAM, 0);
	if (u < 0 || c < 0 || syscall(SYS_bind, u, &U, len) != 0)
		die("udp syscall sockets");
	name(u, &U);
	if (syscall(SYS_sendto, c, "one", 3, 0, &U, len) != 3)
		fail("SYS_sendto: %s", ename(errno));
	sender_of(c, h, &C);
	socklen_t flen = sizeof(from);
	memset(&from, 0, sizeof(from));
	if (syscall(SYS_recvfrom, u, buf, sizeof(buf), 0, &from, &flen) != 3)
		fail("SYS_recvfrom: %s", ename(errno));
	expect_same("SYS_recvfrom source", &from, &C);
	/* sendmsg/recvmsg with names */
	struct iovec iov = {.iov_base = "two", .iov_len = 3};
	struct msghdr m = {.msg_name = &U, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
	if (syscall(SYS_sendmsg, c, &m, 0) != 3)
		fail("SYS_sendmsg: %s", ename(errno));
	struct iovec riov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr rm = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &riov,
			    .msg_iovlen = 1};
	memset(&from, 0, sizeof(from));
	if (syscall(SYS_recvmsg, u, &rm, 0) != 3)
		fail("SYS_recvmsg: %s", ename(errno));
	expect_same("SYS_recvmsg source", &from, &C);
	/* sendmmsg/recvmmsg */
	struct iovec iv[2] = {{.iov_base = "three", .iov_len = 5}, {.iov_base = "four", .iov_len = 4}};
	struct mmsghdr mm[2];
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 2; i++) {
		mm[i].msg_hdr.msg_name = &U;
		mm[i].msg_hdr.msg_namelen = len;
		mm[i].msg_hdr.msg_iov = &iv[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	if (syscall(SYS_sendmmsg, c, mm, 2, 0) != 2)
		fail("SYS_sendmmsg: %s", ename(errno));
	char b2[2][64];
	struct sockaddr_storage f2[2];
	struct iovec rv[2] = {{.iov_base = b2[0], .iov_len = 64}, {.iov_base = b2[1], .iov_len = 64}};
	memset(mm, 0, sizeof(mm));
	memset(f2, 0, sizeof(f2));
	for (int i = 0; i < 2; i++) {
		mm[i].msg_hdr.msg_name = &f2[i];
		mm[i].msg_hdr.msg_namelen = sizeof(f2[i]);
		mm[i].msg_hdr.msg_iov = &rv[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	long got = syscall(SYS_recvmmsg, u, mm, 2, 0, NULL);
	if (got != 2 || mm[0].msg_len != 5 || mm[1].msg_len != 4)
		fail("SYS_recvmmsg: %ld (%s)", got, ename(errno));
	for (int i = 0; i < 2 && i < got; i++)
		expect_same("SYS_recvmmsg source", &f2[i], &C);
	/* connected: SYS_connect, then SYS_write */
	if (syscall(SYS_connect, c, &U, len) != 0)
		fail("SYS_connect udp: %s", ename(errno));
	if (syscall(SYS_write, c, "five", 4) != 4)
		fail("SYS_write on connected udp: %s", ename(errno));
	flen = sizeof(from);
	if (syscall(SYS_recvfrom, u, buf, sizeof(buf), 0, &from, &flen) != 4)
		fail("SYS_recvfrom after SYS_write: %s", ename(errno));
	expect_same("source after SYS_write", &from, &C);
	syscall(SYS_close, u);
	syscall(SYS_close, c);
	ok(what);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: libcvar CHECK H4 H6\n");
		return 2;
	}
	host4 = argv[2];
	host6 = argv[3];
	const char *c = argv[1];
	if (strcmp(c, "fcntl64") == 0)
		check_fcntl64();
	else if (strcmp(c, "accept4") == 0) {
		check_accept4(host4);
		check_accept4(host6);
	} else if (strcmp(c, "bindresvport") == 0) {
		check_bindresvport(SOCK_STREAM);
		check_bindresvport(SOCK_DGRAM);
	} else if (strcmp(c, "fortify_udp") == 0) {
		check_fortify_udp(host4);
		check_fortify_udp(host6);
	} else if (strcmp(c, "fortify_tcp") == 0) {
		check_fortify_tcp(host4);
		check_fortify_tcp(host6);
	} else if (strcmp(c, "syscall_tcp") == 0) {
		check_syscall_tcp(host4);
		check_syscall_tcp(host6);
	} else if (strcmp(c, "syscall_udp") == 0) {
		check_syscall_udp(host4);
		check_syscall_udp(host6);
	} else {
		fprintf(stderr, "unknown check %s\n", c);
		return 2;
	}
	return failures ? 1 : 0;
}
