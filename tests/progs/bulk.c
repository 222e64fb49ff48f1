/*
 * bulk - N concurrent TCP streams carrying SIZE bytes in each direction at once,
 * every byte checked, with a checksum per stream and direction.
 *
 *   bulk server HOST PORT N SIZE   listen on HOST:PORT, print "ready", serve N connections
 *   bulk client HOST PORT N SIZE   open N connections to HOST:PORT
 *
 * A client connection first sends its stream number (4 bytes).  Then, on both ends, one
 * thread writes SIZE bytes of the pattern of (stream, direction) and shuts down writing,
 * while another reads until EOF and compares each byte with the pattern it expects.
 * Per stream each side prints
 *   "stream I sent N sum=S recv M sum=R ok"   (or "... BAD <reason>")
 * where the sums (Fletcher-64 style, order sensitive) of what one side sent must equal
 * those of what the other received.  Exit status 0 iff every stream is ok.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "progs.h"

#define TSIZE 1048573u /* prime: streams do not line up with powers of two */
#define CHUNK 65536u
#define MAXN 256

static unsigned char table[TSIZE + CHUNK];
static size_t size;

struct sum {
	uint64_t a, b;
};

static void sum_add(struct sum *s, const unsigned char *p, size_t n)
{
	uint64_t a = s->a, b = s->b;
	for (size_t i = 0; i < n; i++) {
		a += p[i];
		b += a;
	}
	s->a = a;
	s->b = b;
}

static uint64_t sum_value(const struct sum *s)
{
	return s->b ^ (s->a << 32);
}

/* Offset of byte 0 of (stream, direction) in the table: distinct for each pair. */
static size_t shift_of(unsigned stream, int to_server)
{
	return ((size_t)stream * 104729u + (to_server ? 7919u : 0u)) % TSIZE;
}

struct conn {
	int fd;
	unsigned stream;
	int is_server;
	/* results */
	size_t sent, received;
	struct sum sent_sum, recv_sum;
	char error[160];
};

static void fail(struct conn *c, const char *fmt, size_t v, int err)
{
	if (c->error[0] == 0)
		snprintf(c->error, sizeof(c->error), fmt, v, err ? strerror(err) : "");
}

static void *sender(void *arg)
{
	struct conn *c = arg;
	size_t shift = shift_of(c->stream, !c->is_server);
	size_t off = 0;
	while (off < size) {
		size_t start = (off + shift) % TSIZE;
		size_t n = size - off < CHUNK ? size - off : CHUNK;
		ssize_t w = write(c->fd, table + start, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fail(c, "write failed at %zu: %s", off, errno);
			break;
		}
		sum_add(&c->sent_sum, table + start, (size_t)w);
		off += (size_t)w;
	}
	c->sent = off;
	if (shutdown(c->fd, SHUT_WR) < 0)
		fail(c, "shutdown failed after %zu: %s", off, errno);
	return NULL;
}

static void receiver(struct conn *c)
{
	static __thread unsigned char buf[CHUNK];
	size_t shift = shift_of(c->stream, c->is_server);
	size_t off = 0;
	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof(buf));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(c, "read failed at %zu: %s", off, errno);
			break;
		}
		if (r == 0)
			break;
		size_t n = (size_t)r;
		if (off + n > size) {
			fail(c, "more than expected: %zu bytes%s", off + n, 0);
			break;
		}
		size_t start = (off + shift) % TSIZE;
		if (memcmp(buf, table + start, n) != 0) {
			size_t k = 0;
			while (buf[k] == table[start + k])
				k++;
			fail(c, "wrong byte at offset %zu%s", off + k, 0);
			break;
		}
		sum_add(&c->recv_sum, buf, n);
		off += n;
	}
	c->received = off;
	if (off != size)
		fail(c, "short stream: EOF after %zu bytes%s", off, 0);
}

static void run_conn(struct conn *c)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, sender, c);
	if (err != 0) {
		fail(c, "pthread_create: %zu %s", 0, err);
		return;
	}
	receiver(c);
	pthread_join(t, NULL);
}

static void *server_conn(void *arg)
{
	struct conn *c = arg;
	uint32_t id;
	if (read_full(c->fd, &id, sizeof(id)) != 1 || ntohl(id) >= MAXN) {
		fail(c, "bad stream header%zu%s", 0, 0);
		return NULL;
	}
	c->stream = ntohl(id);
	run_conn(c);
	return NULL;
}

static void *client_conn(void *arg)
{
	struct conn *c = arg;
	uint32_t id = htonl(c->stream);
	if (write_all(c->fd, &id, sizeof(id)) != 0) {
		fail(c, "header write failed%zu: %s", 0, errno);
		return NULL;
	}
	run_conn(c);
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static struct conn conns[MAXN];
	pthread_t threads[MAXN];
	struct sockaddr_storage ss;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 6 || (strcmp(argv[1], "server") != 0 && strcmp(argv[1], "client") != 0)) {
		fprintf(stderr, "usage: bulk server|client HOST PORT N SIZE\n");
		return 2;
	}
	int is_server = argv[1][0] == 's';
	socklen_t len = parse_addr(argv[2], (unsigned)atoi(argv[3]), &ss);
	unsigned n = (unsigned)atoi(argv[4]);
	size = strtoull(argv[5], NULL, 10);
	if (len == 0 || n == 0 || n > MAXN) {
		fprintf(stderr, "bulk: bad address or stream count\n");
		return 2;
	}
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < sizeof(table); i++)
		table[i] = (unsigned char)(xorshift(&x) >> 24);
	memcpy(table + TSIZE, table, CHUNK); /* slices wrap around contiguously */

	double t0 = now();
	if (is_server) {
		int ls = socket(ss.ss_family, SOCK_STREAM, 0);
		int on = 1;
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (ls < 0 || bind(ls, (struct sockaddr *)&ss, len) < 0 || listen(ls, (int)n) < 0) {
			perror("bulk: listen");
			return 2;
		}
		printf("ready\n");
		for (unsigned i = 0; i < n; i++) {
			int fd = accept(ls, NULL, NULL);
			if (fd < 0) {
				perror("bulk: accept");
				return 2;
			}
			conns[i].fd = fd;
			conns[i].is_server = 1;
			if (pthread_create(&threads[i], NULL, server_conn, &conns[i]) != 0) {
				perror("bulk: pthread_create");
				return 2;
			}
		}
		close(ls);
	} else {
		for (unsigned i = 0; i < n; i++) {
			int fd = socket(ss.ss_family, SOCK_STREAM, 0);
			if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0) {
				perror("bulk: connect");
				return 2;
			}
			conns[i].fd = fd;
			conns[i].stream = i;
			if (pthread_create(&threads[i], NULL, client_conn, &conns[i]) != 0) {
				perror("bulk: pthread_create");
				return 2;
			}
		}
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(threads[i], NULL);

	int bad = 0;
	for (unsigned i = 0; i < n; i++) {
		struct conn *c = &conns[i];
		printf("stream %u sent %zu sum=%016llx recv %zu sum=%016llx %s%s\n", c->stream, c->sent,
		       (unsigned long long)sum_value(&c->sent_sum), c->received,
		       (unsigned long long)sum_value(&c->recv_sum), c->error[0] ? "BAD " : "ok",
		       c->error);
		bad |= c->error[0] != 0;
		close(c->fd);
	}
	printf("elapsed %.2f\n", now() - t0);
	return bad;
}
