/*
 * threadecho - a threaded TCP+UDP echo server and threaded clients, to run
 * many threads creating, connecting, sending, receiving and closing sockets
 * at once (issue 3, item 9).  Self-checking ("FAIL ..." lines, exit 1).
 *
 *   threadecho server HOST PORT WORKERS
 *       TCP listener and UDP socket on HOST:PORT (0: any port); WORKERS
 *       threads accept and echo, two threads echo datagrams.  Prints
 *       "ready PORT" and runs until stdin reaches EOF.
 *   threadecho client HOST PORT THREADS CONNS BYTES
 *       THREADS threads each make CONNS connections; on each: a header with
 *       the client's own address (the server checks it against what accept
 *       reported), then BYTES in random chunks, each read back and compared
 *       (FNV-1a of both directions); one UDP exchange per connection, whose
 *       reply must come from the server's address; sometimes the connection
 *       continues on a dup() of the socket.
 *   threadecho all HOST WORKERS THREADS CONNS BYTES CHURN
 *       both in one process, plus two threads that CHURN times create, bind,
 *       dup, check and close sockets and pipes; then stops everything.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PROGS_SELF_CHECK
#include "progs.h"

#define HDR 64
#define MAXCHUNK 16384

static atomic_int stop;
static atomic_ulong tcp_bytes, tcp_conns, udp_msgs, churn_ops;
static int family;
static struct sockaddr_storage srv;
static socklen_t srv_len;
static int lst = -1, udp = -1;

/* ------------------------------------------------------------------ server */

static void serve(int a, const struct sockaddr_storage *from)
{
	char hdr[HDR], want[HDR];
	unsigned char *buf = malloc(MAXCHUNK);
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	if (buf == NULL)
		return;
	if (read_full(a, hdr, HDR) != 1) {
		if (!atomic_load(&stop))
			fail("server: no header: %s", ename(errno));
		free(buf);
		return;
	}
	memset(want, 0, sizeof(want));
	addr_text(from, want, sizeof(want));
	if (strncmp(hdr, want, HDR) != 0) {
		fail("server: accept reported %s, the client says it is %.*s", want, HDR, hdr);
		hdr[0] = 'X';
	}
	if (getpeername(a, (struct sockaddr *)&peer, &len) != 0) {
		fail("server: getpeername: %s", ename(errno));
	} else {
		char got[HDR];
		addr_text(&peer, got, sizeof(got));
		if (strcmp(got, want) != 0)
			fail("server: getpeername %s, accept said %s", got, want);
	}
	if (write_all(a, hdr, HDR) != 0) {
		free(buf);
		return;
	}
	echo_stream(a, buf, MAXCHUNK);
	free(buf);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		memset(&from, 0, sizeof(from));
		int a = accept(lst, (struct sockaddr *)&from, &len);
		if (a < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (!atomic_load(&stop))
				fail("accept: %s", ename(errno));
			return NULL;
		}
		if (atomic_load(&stop)) {
			close(a);
			return NULL;
		}
		if (from.ss_family != family)
			fail("accept: peer family %d, expected %d", from.ss_family, family);
		serve(a, &from);
		close(a);
	}
}

static void *udp_echo(void *arg)
{
	(void)arg;
	unsigned char buf[2048];
	for (;;) {
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("udp recvfrom: %s", ename(errno));
			return NULL;
		}
		if (n == 4 && memcmp(buf, "quit", 4) == 0)
			return NULL;
		if (from.ss_family != family)
			fail("udp: sender family %d", from.ss_family);
		if (sendto(udp, buf, (size_t)n, 0, (struct sockaddr *)&from, len) != n)
			fail("udp sendto: %s", ename(errno));
	}
}

static void server_setup(const char *host, unsigned port)
{
	srv_len = make_addr(host, port, &srv);
	family = srv.ss_family;
	lst = socket(family, SOCK_STREAM, 0);
	int on = 1;
	setsockopt(lst, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (lst < 0 || bind(lst, (struct sockaddr *)&srv, srv_len) != 0 || listen(lst, 256) != 0) {
		printf("FAIL listener: %s\n", ename(errno));
		exit(1);
	}
	socklen_t len = sizeof(srv);
	getsockname(lst, (struct sockaddr *)&srv, &len);
	udp = socket(family, SOCK_DGRAM, 0);
	if (udp < 0 || bind(udp, (struct sockaddr *)&srv, srv_len) != 0) {
		printf("FAIL udp socket: %s\n", ename(errno));
		exit(1);
	}
}

static unsigned srv_port(void)
{
	return family == AF_INET ? ntohs(((struct sockaddr_in *)&srv)->sin_port)
				 : ntohs(((struct sockaddr_in6 *)&srv)->sin6_port);
}

/* ------------------------------------------------------------------ client */

struct client_arg {
	int id;
	int conns;
	size_t bytes;
};

static void udp_exchange(int id, int c, uint64_t *rs)
{
	int u = socket(family, SOCK_DGRAM, 0);
	if (u < 0) {
		fail("client %d: udp socket: %s", id, ename(errno));
		return;
	}
	struct timeval tv = {.tv_sec = 5};
	setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	unsigned char msg[1400], back[2048];
	size_t n = 16 + xorshift(rs) % (sizeof(msg) - 16);
	snprintf((char *)msg, 16, "%04d-%06d", id, c);
	for (size_t i = 15; i < n; i++)
		msg[i] = (unsigned char)xorshift(rs);
	for (int attempt = 0; attempt < 3; attempt++) {
		if (sendto(u, msg, n, 0, (struct sockaddr *)&srv, srv_len) != (ssize_t)n) {
			fail("client %d: udp sendto: %s", id, ename(errno));
			break;
		}
		struct sockaddr_storage from;
		socklen_t len = sizeof(from);
		ssize_t k = recvfrom(u, back, sizeof(back), 0, (struct sockaddr *)&from, &len);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k != (ssize_t)n || memcmp(back, msg, n) != 0)
			fail("client %d: udp echo of %zu bytes came back as %zd bytes", id, n, k);
		else if (!same_addr(&from, &srv)) {
			char a[HDR], b[HDR];
			addr_text(&from, a, sizeof(a));
			addr_text(&srv, b, sizeof(b));
			fail("client %d: udp reply from %s, expected %s", id, a, b);
		} else
			atomic_fetch_add(&udp_msgs, 1);
		break;
	}
	close(u);
}

static void *client(void *argp)
{
	struct client_arg *arg = argp;
	uint64_t rs = 0x9E3779B97F4A7C15ull ^ (uint64_t)(arg->id + 1) * 0x100000001B3ull;
	unsigned char *out = malloc(MAXCHUNK), *in = malloc(MAXCHUNK);
	if (out == NULL || in == NULL)
		return NULL;
	for (int c = 0; c < arg->conns && atomic_load(&failures) < 20; c++) {
		int fd = socket(family, SOCK_STREAM, 0);
		if (fd < 0) {
			fail("client %d: socket: %s", arg->id, ename(errno));
			continue;
		}
		if (c % 3 == 1) {
			int on = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		}
		if (connect(fd, (struct sockaddr *)&srv, srv_len) != 0) {
			fail("client %d: connect: %s", arg->id, ename(errno));
			close(fd);
			continue;
		}
		struct sockaddr_storage me, peer;
		socklen_t len = sizeof(me);
		char hdr[HDR], back[HDR];
		memset(hdr, 0, sizeof(hdr));
		getsockname(fd, (struct sockaddr *)&me, &len);
		addr_text(&me, hdr, sizeof(hdr));
		len = sizeof(peer);
		if (getpeername(fd, (struct sockaddr *)&peer, &len) != 0 || !same_addr(&peer, &srv))
			fail("client %d: getpeername does not give the server", arg->id);
		if (write_all(fd, hdr, HDR) != 0 || read_full(fd, back, HDR) != 1 ||
		    memcmp(hdr, back, HDR) != 0) {
			fail("client %d: header exchange failed (server saw another address?)", arg->id);
			close(fd);
			continue;
		}
		uint32_t h_out = FNV_INIT, h_in = FNV_INIT;
		size_t sent = 0;
		while (sent < arg->bytes) {
			size_t n = 1 + xorshift(&rs) % MAXCHUNK;
			if (n > arg->bytes - sent)
				n = arg->bytes - sent;
			for (size_t i = 0; i < n; i++)
				out[i] = (unsigned char)xorshift(&rs);
			if (c % 4 == 2 && sent == 0) {
				/* continue on a copy, the original closed */
				int d = dup(fd);
				close(fd);
				fd = d;
			}
			h_out = fnv(h_out, out, n);
			if (write_all(fd, out, n) != 0 || read_full(fd, in, n) != 1) {
				fail("client %d: echo broke after %zu bytes: %s", arg->id, sent, ename(errno));
				break;
			}
			h_in = fnv(h_in, in, n);
			sent += n;
		}
		if (h_in != h_out)
			fail("client %d conn %d: checksum %08x sent, %08x came back", arg->id, c, h_out,
			     h_in);
		atomic_fetch_add(&tcp_bytes, sent);
		shutdown(fd, SHUT_WR);
		if (read(fd, in, 1) != 0)
			fail("client %d: no EOF after shutdown", arg->id);
		close(fd);
		atomic_fetch_add(&tcp_conns, 1);
		udp_exchange(arg->id, c, &rs);
	}
	free(out);
	free(in);
	return NULL;
}

static int run_clients(int threads, int conns, size_t bytes)
{
	pthread_t *t = calloc((size_t)threads, sizeof(*t));
	struct client_arg *a = calloc((size_t)threads, sizeof(*a));
	for (int i = 0; i < threads; i++) {
		a[i] = (struct client_arg){.id = i, .conns = conns, .bytes = bytes};
		if (pthread_create(&t[i], NULL, client, &a[i]) != 0) {
			printf("FAIL pthread_create\n");
			exit(1);
		}
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	free(t);
	free(a);
	return 0;
}

/* ------------------------------------------------------------------ churn */

static const char *churn_host;

static void *churn(void *arg)
{
	long iters = (long)(intptr_t)arg;
	uint64_t rs = 0xC0FFEEull + (uint64_t)iters;
	for (long i = 0; i < iters; i++) {
		int type = (xorshift(&rs) & 1) ? SOCK_STREAM : SOCK_DGRAM;
		int s = socket(family, type, 0);
		if (s < 0) {
			fail("churn: socket: %s", ename(errno));
			continue;
		}
		struct sockaddr_storage ss, name, again;
		socklen_t len = make_addr(churn_host, 0, &ss);
		if ((xorshift(&rs) & 1) && bind(s, (struct sockaddr *)&ss, len) != 0)
			fail("churn: bind: %s", ename(errno));
		int on = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		len = sizeof(name);
		getsockname(s, (struct sockaddr *)&name, &len);
		int d = dup(s);
		close(s);
		int p[2];
		if (pipe(p) == 0) {
			close(p[0]);
			close(p[1]);
		}
		len = sizeof(again);
		int v = -1;
		socklen_t vl = sizeof(v);
		if (getsockname(d, (struct sockaddr *)&again, &len) != 0 || !same_addr(&name, &again))
			fail("churn: the dup of a socket lost its name");
		if (getsockopt(d, SOL_SOCKET, SO_TYPE, &v, &vl) != 0 || v != type)
			fail("churn: SO_TYPE %d, expected %d", v, type);
		close(d);
		atomic_fetch_add(&churn_ops, 1);
	}
	return NULL;
}

/* ------------------------------------------------------------------ main */

static pthread_t *start_server(int workers, pthread_t udp_t[2])
{
	pthread_t *w = calloc((size_t)workers, sizeof(*w));
	for (int i = 0; i < workers; i++)
		pthread_create(&w[i], NULL, worker, NULL);
	for (int i = 0; i < 2; i++)
		pthread_create(&udp_t[i], NULL, udp_echo, NULL);
	return w;
}

static void stop_server(int workers, pthread_t *w, pthread_t udp_t[2])
{
	atomic_store(&stop, 1);
	for (int i = 0; i < workers; i++) {
		int c = socket(family, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&srv, srv_len) != 0)
			fail("stop: connect: %s", ename(errno));
		close(c);
	}
	for (int i = 0; i < workers; i++)
		pthread_join(w[i], NULL);
	int q = socket(family, SOCK_DGRAM, 0);
	for (int i = 0; i < 2; i++)
		sendto(q, "quit", 4, 0, (struct sockaddr *)&srv, srv_len);
	for (int i = 0; i < 2; i++)
		pthread_join(udp_t[i], NULL);
	close(q);
	free(w);
	close(lst);
	close(udp);
}

static void summary(void)
{
	printf("tcp_conns %lu tcp_bytes %lu udp %lu churn %lu failures %d\n",
	       atomic_load(&tcp_conns), atomic_load(&tcp_bytes), atomic_load(&udp_msgs),
	       atomic_load(&churn_ops), atomic_load(&failures));
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && strcmp(argv[1], "server") == 0) {
		int workers = atoi(argv[4]);
		pthread_t udp_t[2];
		server_setup(argv[2], (unsigned)atoi(argv[3]));
		start_server(workers, udp_t);
		printf("ready %u\n", srv_port());
		char line[64];
		while (fgets(line, sizeof(line), stdin) != NULL)
			;
		summary();
		fflush(stdout);
		_exit(atomic_load(&failures) ? 1 : 0); /* workers are still blocked in accept */
	}
	if (argc == 7 && strcmp(argv[1], "client") == 0) {
		srv_len = make_addr(argv[2], (unsigned)atoi(argv[3]), &srv);
		family = srv.ss_family;
		run_clients(atoi(argv[4]), atoi(argv[5]), strtoul(argv[6], NULL, 10));
		summary();
		return atomic_load(&failures) ? 1 : 0;
	}
	if (argc == 8 && strcmp(argv[1], "all") == 0) {
		int workers = atoi(argv[3]);
		long churn_n = atol(argv[7]);
		pthread_t udp_t[2], ch[2];
		server_setup(argv[2], 0);
		churn_host = argv[2];
		pthread_t *w = start_server(workers, udp_t);
		for (int i = 0; i < 2; i++)
			pthread_create(&ch[i], NULL, churn, (void *)(intptr_t)(churn_n + i));
		run_clients(atoi(argv[4]), atoi(argv[5]), strtoul(argv[6], NULL, 10));
		for (int i = 0; i < 2; i++)
			pthread_join(ch[i], NULL);
		stop_server(workers, w, udp_t);
		summary();
		return atomic_load(&failures) ? 1 : 0;
	}
	fprintf(stderr, "usage: threadecho server HOST PORT WORKERS | client HOST PORT THREADS "
			"CONNS BYTES | all HOST WORKERS THREADS CONNS BYTES CHURN\n");
	return 2;
}
