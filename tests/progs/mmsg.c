/*
 * mmsg - sendmmsg/recvmmsg over UDP in one process, printing what it observes so a test
 * can compare a wrapped run with one on kernel loopback.
 *
 *   mmsg RECV_HOST SEND_HOST PORT
 *
 * The receiver is bound to RECV_HOST:PORT, the sender to SEND_HOST:PORT+1. Ports are
 * printed relative to PORT ("PORT", "PORT+1") or as "EPH" (ephemeral range).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progs.h"

static unsigned base_port;

static void fmt_addr(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;
	if (len == 0) {
		snprintf(out, n, "(none)");
		return;
	}
	if (!host_port(ss, host, sizeof(host), &port)) {
		snprintf(out, n, "%s", host);
		return;
	}
	if (port == base_port)
		snprintf(out, n, "%s PORT len=%u", host, (unsigned)len);
	else if (port > base_port && port < base_port + 16)
		snprintf(out, n, "%s PORT+%u len=%u", host, port - base_port, (unsigned)len);
	else if (port >= 32768 && port <= 60999)
		snprintf(out, n, "%s EPH len=%u", host, (unsigned)len);
	else
		snprintf(out, n, "%s %u len=%u", host, port, (unsigned)len);
}

#define VLEN 8

static struct mmsghdr rvec[VLEN];
static struct iovec riov[VLEN][2];
static char rbuf[VLEN][2][16];
static struct sockaddr_storage rname[VLEN];

static void prepare_recv(void)
{
	memset(rvec, 0, sizeof(rvec));
	memset(rbuf, 0, sizeof(rbuf));
	for (int i = 0; i < VLEN; i++) {
		riov[i][0].iov_base = rbuf[i][0];
		riov[i][0].iov_len = 4; /* first 4 bytes here, the next up to 8 in the second */
		riov[i][1].iov_base = rbuf[i][1];
		riov[i][1].iov_len = 8;
		rvec[i].msg_hdr.msg_iov = riov[i];
		rvec[i].msg_hdr.msg_iovlen = 2;
		rvec[i].msg_hdr.msg_name = &rname[i];
		rvec[i].msg_hdr.msg_namelen = sizeof(rname[i]);
	}
}

static void do_recv(const char *label, int fd, unsigned vlen, int flags)
{
	prepare_recv();
	int n = recvmmsg(fd, rvec, vlen, flags, NULL);
	if (n < 0) {
		printf("%s: %s\n", label, ename(errno));
		return;
	}
	printf("%s: %d\n", label, n);
	for (int i = 0; i < n; i++) {
		char from[96];
		fmt_addr(&rname[i], rvec[i].msg_hdr.msg_namelen, from, sizeof(from));
		printf("  [%d] len=%u flags=%s%s data=%.4s|%.8s from %s\n", i, rvec[i].msg_len,
		       rvec[i].msg_hdr.msg_flags & MSG_TRUNC ? "TRUNC" : "-",
		       rvec[i].msg_hdr.msg_flags & MSG_CTRUNC ? ",CTRUNC" : "", rbuf[i][0],
		       rbuf[i][1], from);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ra, sa, tmp;
	socklen_t rl, sl;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: mmsg RECV_HOST SEND_HOST PORT\n");
		return 2;
	}
	base_port = (unsigned)atoi(argv[3]);
	rl = make_addr(argv[1], base_port, &ra);
	sl = make_addr(argv[2], base_port + 1, &sa);
	int r = socket(ra.ss_family, SOCK_DGRAM, 0);
	int s = socket(sa.ss_family, SOCK_DGRAM, 0);
	if (r < 0 || s < 0 || bind(r, (struct sockaddr *)&ra, rl) < 0 ||
	    bind(s, (struct sockaddr *)&sa, sl) < 0) {
		perror("mmsg: socket/bind");
		return 2;
	}

	/* Five datagrams with names, the third gathered from three iovecs, the
	 * fifth longer than the receive buffers (12 bytes). */
	static const char *texts[] = {"one", "two", "thr", "four", "fivefivefive-overflow"};
	struct mmsghdr svec[5];
	struct iovec siov[5][3];
	memset(svec, 0, sizeof(svec));
	for (int i = 0; i < 5; i++) {
		siov[i][0].iov_base = (void *)texts[i];
		siov[i][0].iov_len = strlen(texts[i]);
		svec[i].msg_hdr.msg_iov = siov[i];
		svec[i].msg_hdr.msg_iovlen = 1;
		svec[i].msg_hdr.msg_name = &ra;
		svec[i].msg_hdr.msg_namelen = rl;
	}
	siov[2][0].iov_base = (void *)"th";
	siov[2][0].iov_len = 2;
	siov[2][1].iov_base = (void *)"";
	siov[2][1].iov_len = 0;
	siov[2][2].iov_base = (void *)"ree";
	siov[2][2].iov_len = 3;
	svec[2].msg_hdr.msg_iovlen = 3;

	int n = sendmmsg(s, svec, 5, 0);
	printf("sendmmsg named: %d", n < 0 ? -1 : n);
	if (n < 0)
		printf(" %s", ename(errno));
	for (int i = 0; i < (n < 0 ? 0 : n); i++)
		printf(" %u", svec[i].msg_len);
	printf("\n");

	do_recv("recvmmsg vlen=3", r, 3, MSG_DONTWAIT);
	do_recv("recvmmsg rest", r, VLEN, MSG_DONTWAIT);
	do_recv("recvmmsg empty", r, VLEN, MSG_DONTWAIT);

	/* Connected sender, no names. */
	if (connect(s, (struct sockaddr *)&ra, rl) < 0) {
		perror("mmsg: connect");
		return 2;
	}
	for (int i = 0; i < 3; i++) {
		svec[i].msg_hdr.msg_name = NULL;
		svec[i].msg_hdr.msg_namelen = 0;
	}
	n = sendmmsg(s, svec, 3, 0);
	printf("sendmmsg connected: %d\n", n < 0 ? -1 : n);
	do_recv("recvmmsg waitforone", r, VLEN, MSG_WAITFORONE);

	/* A name on a connected UDP socket overrides the peer, as sendto does. */
	struct sockaddr_storage oa;
	socklen_t ol = make_addr(argv[1], base_port + 2, &oa);
	int o = socket(oa.ss_family, SOCK_DGRAM, 0);
	if (o < 0 || bind(o, (struct sockaddr *)&oa, ol) < 0) {
		perror("mmsg: bind other");
		return 2;
	}
	svec[0].msg_hdr.msg_name = &oa;
	svec[0].msg_hdr.msg_namelen = ol;
	n = sendmmsg(s, svec, 1, 0);
	printf("sendmmsg override: %d\n", n < 0 ? -1 : n);
	do_recv("recvmmsg other", o, VLEN, MSG_WAITFORONE);

	/* Unconnected socket with no name: EDESTADDRREQ on the first message. */
	int u = socket(sa.ss_family, SOCK_DGRAM, 0);
	svec[0].msg_hdr.msg_name = NULL;
	svec[0].msg_hdr.msg_namelen = 0;
	n = sendmmsg(u, svec, 2, 0);
	printf("sendmmsg no name: %d %s\n", n, n < 0 ? ename(errno) : "");

	socklen_t tl = sizeof(tmp);
	getsockname(s, (struct sockaddr *)&tmp, &tl);
	char name[96];
	fmt_addr(&tmp, tl, name, sizeof(name));
	printf("sender name: %s\n", name);
	return 0;
}
