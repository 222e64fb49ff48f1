/*
 * pcap.c - SOCKET_WRAPPER_PCAP_FILE: the packets an emulated network would
 * carry, as a classic pcap of raw IP.  The rules (which side records what,
 * sequence numbers, header fields) are in swrap_pcap.h; cwrap_py.pcap builds
 * the same records.
 *
 * Records are built in stack buffers and written with one writev() per call
 * to an O_APPEND file: the kernel appends each writev whole, so records of
 * concurrent processes never interleave.  Payload bytes are not copied.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "swrap.h"
#include "swrap_pcap.h"

struct swrap_pcap {
	struct swrap_pcap *next;
	pthread_mutex_t open_mutex; /* serialises (re)opening */
	atomic_int fd;              /* -1 until opened, or after the program closed it */
	bool failed;                /* reported once; no more attempts */
	char path[];
};

/* Trace files by path; immortal, like configuration snapshots, because
 * sockets keep pointers to them. */
static struct swrap_pcap *traces;
static pthread_mutex_t traces_mutex = PTHREAD_MUTEX_INITIALIZER;

struct swrap_pcap *swrap_pcap_for(const struct swrap_config *cfg)
{
	if (cfg == NULL || cfg->pcap_file[0] == '\0')
		return NULL;
	pthread_mutex_lock(&traces_mutex);
	struct swrap_pcap *t;
	for (t = traces; t != NULL; t = t->next)
		if (strcmp(t->path, cfg->pcap_file) == 0)
			break;
	if (t == NULL) {
		size_t len = strlen(cfg->pcap_file);
		t = calloc(1, sizeof(*t) + len + 1);
		if (t != NULL) {
			memcpy(t->path, cfg->pcap_file, len + 1);
			atomic_init(&t->fd, -1);
			pthread_mutex_init(&t->open_mutex, NULL);
			t->next = traces;
			traces = t;
		}
	}
	pthread_mutex_unlock(&traces_mutex);
	return t;
}

/* ---- the file */

static const struct swrap_pcap_file_header file_header = {
	.magic = SWRAP_PCAP_MAGIC,
	.version_major = SWRAP_PCAP_VERSION_MAJOR,
	.version_minor = SWRAP_PCAP_VERSION_MINOR,
	.snaplen = SWRAP_PCAP_SNAPLEN,
	.linktype = SWRAP_PCAP_LINKTYPE_RAW,
};

static bool write_all(int fd, const void *buf, size_t len)
{
	return SWRAP_LIBC(write)(fd, buf, len) == (ssize_t)len;
}

/* Make the file exist with its header, exactly once across processes: the
 * header goes into a private file that is then linked into place, which
 * fails harmlessly if another process got there first. */
static void create_with_header(const char *path)
{
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	int fd = SWRAP_LIBC(open)(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	bool ok = write_all(fd, &file_header, sizeof(file_header));
	SWRAP_LIBC(close)(fd);
	if (ok)
		link(tmp, path);
	unlink(tmp);
}

/* An empty file someone created (touch, a shell redirection): add the
 * header under a lock, so that only one process does. */
static void header_if_empty(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size != 0)
		return;
	flock(fd, LOCK_EX);
	if (fstat(fd, &st) == 0 && st.st_size == 0)
		write_all(fd, &file_header, sizeof(file_header));
	flock(fd, LOCK_UN);
}

/* Our fds live high, out of the way of programs that count from 3. */
#define TRACE_FD_FLOOR 512

static int open_trace(struct swrap_pcap *t)
{
	int fd = SWRAP_LIBC(open)(t->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		create_with_header(t->path);
		fd = SWRAP_LIBC(open)(t->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	header_if_empty(fd);
	int high = SWRAP_LIBC(fcntl)(fd, F_DUPFD_CLOEXEC, TRACE_FD_FLOOR);
	if (high >= 0) {
		SWRAP_LIBC(close)(fd);
		fd = high;
	}
	return fd;
}

/* Lowest fd number a trace file has (INT_MAX: none), so that close() and
 * friends know cheaply when a program closes one of ours (daemons close
 * every fd at start); the next record then opens the file again. */
atomic_int swrap_trace_fd_min = INT_MAX;

void swrap_pcap_fd_gone(int lo, int hi)
{
	pthread_mutex_lock(&traces_mutex);
	int min = INT_MAX;
	for (struct swrap_pcap *t = traces; t != NULL; t = t->next) {
		int fd = atomic_load(&t->fd);
		if (fd >= lo && fd <= hi)
			atomic_compare_exchange_strong(&t->fd, &fd, -1);
		fd = atomic_load(&t->fd);
		if (fd >= 0 && fd < min)
			min = fd;
	}
	atomic_store(&swrap_trace_fd_min, min);
	pthread_mutex_unlock(&traces_mutex);
}

/* The fd to append to, or -1 (reported once) if the file cannot be written. */
static int trace_fd(struct swrap_pcap *t)
{
	int fd = atomic_load_explicit(&t->fd, memory_order_acquire);
	if (fd >= 0)
		return fd;
	pthread_mutex_lock(&t->open_mutex);
	if (t->failed) {
		pthread_mutex_unlock(&t->open_mutex);
		return -1;
	}
	fd = atomic_load(&t->fd);
	if (fd < 0) {
		fd = open_trace(t);
		if (fd < 0) {
			t->failed = true;
			swrap_say("SOCKET_WRAPPER_PCAP_FILE=\"%s\": %s; traffic goes on without a trace",
				  t->path, strerror(errno));
		}
		atomic_store(&t->fd, fd);
		int min = atomic_load(&swrap_trace_fd_min);
		while (fd >= 0 && fd < min &&
		       !atomic_compare_exchange_weak(&swrap_trace_fd_min, &min, fd))
			;
	}
	pthread_mutex_unlock(&t->open_mutex);
	return fd;
}

/* ---- packets */

struct endpoint {
	bool v6;
	uint8_t addr[16]; /* network order; 4 bytes used for IPv4 */
	uint16_t port;
};

static void endpoint_from(const union swrap_sockaddr *a, struct endpoint *e)
{
	memset(e, 0, sizeof(*e));
	if (a->sa.sa_family == AF_INET) {
		memcpy(e->addr, &a->in.sin_addr, 4);
		e->port = ntohs(a->in.sin_port);
	} else if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
		memcpy(e->addr, &a->in6.sin6_addr.s6_addr[12], 4);
		e->port = ntohs(a->in6.sin6_port);
	} else {
		e->v6 = true;
		memcpy(e->addr, &a->in6.sin6_addr, 16);
		e->port = ntohs(a->in6.sin6_port);
	}
}

/* The socket's own endpoint, as concrete as the packets need it, in the
 * family the peer talks (IPv4 for a v4-mapped peer). */
static void local_endpoint(const struct swrap_sock *s, bool v6, struct endpoint *e)
{
	union swrap_sockaddr a;
	uint32_t net = s->cfg != NULL ? s->cfg->ipv4_net : SWRAP_NET_LOOPBACK;
	swrap_addr_make(net, v6 ? AF_INET6 : AF_INET, s->iface, s->port, &a);
	endpoint_from(&a, e);
}

static uint32_t fnv1a(uint32_t h, const void *data, size_t len)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= SWRAP_PCAP_FNV_PRIME;
	}
	return h;
}

static uint32_t isn(const struct endpoint *src, const struct endpoint *dst)
{
	size_t alen = src->v6 ? 16 : 4;
	uint8_t sport[2] = {(uint8_t)(src->port >> 8), (uint8_t)src->port};
	uint8_t dport[2] = {(uint8_t)(dst->port >> 8), (uint8_t)dst->port};
	uint32_t h = (uint32_t)SWRAP_PCAP_FNV_OFFSET;
	h = fnv1a(h, src->addr, alen);
	h = fnv1a(h, sport, 2);
	h = fnv1a(h, dst->addr, alen);
	return fnv1a(h, dport, 2);
}

static uint16_t fold16(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xFFFF) + (acc >> 16);
	return (uint16_t)acc;
}

/* Ones' complement sum of bytes read as 16-bit words in the machine's own
 * order, eight bytes at a time (RFC 1071: the sum commutes with the byte
 * order, so it is swapped once at the end rather than per word). */
static uint16_t sum_native(const uint8_t *p, size_t n)
{
	uint64_t acc = 0;
	for (; n >= 8; p += 8, n -= 8) {
		uint32_t a, b;
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		acc += (uint64_t)a + b;
	}
	for (; n >= 2; p += 2, n -= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		acc += w;
	}
	if (n == 1) {
		uint16_t w = 0;
		memcpy(&w, p, 1); /* the first byte of a word, zero padded */
		acc += w;
	}
	return fold16(acc);
}

static uint16_t swap16(uint16_t v)
{
	return (uint16_t)(v >> 8 | v << 8);
}

/* Add the bytes to a big-endian ones' complement sum; *odd says whether they
 * start at an odd offset of the summed stream (and is updated). */
static uint64_t sum_bytes(uint64_t acc, const uint8_t *p, size_t n, bool *odd)
{
	if (n == 0)
		return acc;
	uint16_t part = sum_native(p, n);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	part = swap16(part);
#endif
	if (*odd) /* every byte sits one place later in its word */
		part = swap16(part);
	*odd ^= n & 1;
	return acc + part;
}

static uint16_t fold(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xFFFF) + (acc >> 16);
	return (uint16_t)~acc;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* A walk over the payload iovecs, a segment at a time. */
struct cursor {
	const struct iovec *iov;
	size_t iovcnt;
	size_t index;
	size_t offset;
};

/* Append up to `want` payload bytes as iovecs to out[]; returns how many
 * iovecs were used and adds the bytes to the checksum. */
static size_t take(struct cursor *c, size_t want, struct iovec *out, size_t room, uint64_t *acc,
		   bool *odd)
{
	size_t used = 0;
	while (want > 0 && c->index < c->iovcnt && used < room) {
		const struct iovec *v = &c->iov[c->index];
		size_t n = v->iov_len - c->offset;
		if (n > want)
			n = want;
		const uint8_t *p = (const uint8_t *)v->iov_base + c->offset;
		if (n > 0) {
			*acc = sum_bytes(*acc, p, n, odd);
			out[used].iov_base = (void *)p;
			out[used].iov_len = n;
			used++;
		}
		want -= n;
		c->offset += n;
		if (c->offset == v->iov_len) {
			c->index++;
			c->offset = 0;
		}
	}
	return used;
}

#define HDR_MAX (16 + 40 + 20)

/* IP header + pseudo-header sum for an upper-layer packet of l4_len bytes. */
static size_t ip_header(uint8_t *h, const struct endpoint *src, const struct endpoint *dst,
			uint8_t proto, size_t l4_len, uint8_t tos, uint8_t ttl, bool df, uint64_t *pseudo)
{
	bool odd = false;
	if (src->v6) {
		memset(h, 0, 40);
		put32(h, 6u << 28 | (uint32_t)tos << 20);
		put16(h + 4, (uint16_t)l4_len);
		h[6] = proto;
		h[7] = ttl;
		memcpy(h + 8, src->addr, 16);
		memcpy(h + 24, dst->addr, 16);
		*pseudo = sum_bytes(0, h + 8, 32, &odd) + l4_len + proto;
		return 40;
	}
	memset(h, 0, 20);
	h[0] = 0x45;
	h[1] = tos;
	put16(h + 2, (uint16_t)(20 + l4_len));
	put16(h + 6, df ? 0x4000 : 0);
	h[8] = ttl;
	h[9] = proto;
	memcpy(h + 12, src->addr, 4);
	memcpy(h + 16, dst->addr, 4);
	put16(h + 10, fold(sum_bytes(0, h, 20, &odd)));
	odd = false;
	*pseudo = sum_bytes(0, h + 12, 8, &odd) + l4_len + proto;
	return 20;
}

static void record_header(uint8_t *r, const struct timeval *tv, size_t len)
{
	struct swrap_pcap_record_header rh = {
		.ts_sec = (uint32_t)tv->tv_sec,
		.ts_usec = (uint32_t)tv->tv_usec,
		.incl_len = (uint32_t)len,
		.orig_len = (uint32_t)len,
	};
	memcpy(r, &rh, sizeof(rh));
}

/* Header values a socket sets on its packets. */
static void socket_marks(struct swrap_sock *s, bool v6, uint8_t *tos, uint8_t *ttl)
{
	int v = 0;
	if (v6) {
		*tos = swrap_sockopt_get(s, IPPROTO_IPV6, IPV6_TCLASS, &v) == 0 ? (uint8_t)v : 0;
		*ttl = swrap_sockopt_get(s, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v) == 0 ? (uint8_t)v : 64;
	} else {
		*tos = swrap_sockopt_get(s, IPPROTO_IP, IP_TOS, &v) == 0 ? (uint8_t)v : 0;
		*ttl = swrap_sockopt_get(s, IPPROTO_IP, IP_TTL, &v) == 0 ? (uint8_t)v : 64;
	}
}

struct batch {
	struct iovec iov[IOV_MAX];
	size_t n;
	uint8_t hdr[64][HDR_MAX];
	size_t nhdr;
	int fd;
};

static void flush(struct batch *b)
{
	if (b->n > 0 && b->fd >= 0) {
		/* Partial writes of a regular file happen only on errors (disk
		 * full); what is lost then is lost. */
		ssize_t ignored = SWRAP_LIBC(writev)(b->fd, b->iov, (int)b->n);
		(void)ignored;
	}
	b->n = 0;
	b->nhdr = 0;
}

/* Add one TCP segment with payload from the cursor (or none). */
static void add_tcp(struct batch *b, const struct timeval *tv, const struct endpoint *src,
		    const struct endpoint *dst, uint32_t seq, uint32_t ack, uint8_t flags,
		    struct cursor *c, size_t payload, uint8_t tos, uint8_t ttl)
{
	size_t parts = c != NULL ? c->iovcnt - c->index : 0;
	if (b->nhdr == 64 || b->n + 1 + parts > IOV_MAX)
		flush(b);
	uint8_t *r = b->hdr[b->nhdr++];
	uint8_t *ip = r + 16;
	uint64_t pseudo;
	size_t iph = ip_header(ip, src, dst, 6 /* TCP */, 20 + payload, tos, ttl, true, &pseudo);
	uint8_t *t = ip + iph;
	memset(t, 0, 20);
	put16(t, src->port);
	put16(t + 2, dst->port);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, SWRAP_PCAP_TCP_WINDOW);
	size_t first = b->n++;
	uint64_t acc = 0;
	bool odd = false;
	if (payload > 0)
		b->n += take(c, payload, &b->iov[b->n], IOV_MAX - b->n, &acc, &odd);
	odd = false;
	acc = sum_bytes(acc, t, 20, &odd) + pseudo;
	put16(t + 16, fold(acc));
	record_header(r, tv, iph + 20 + payload);
	b->iov[first].iov_base = r;
	b->iov[first].iov_len = 16 + iph + 20;
}

struct tcp_ends {
	struct endpoint me;
	struct endpoint peer;
	uint8_t tos;
	uint8_t ttl;
};

static bool tcp_ends(struct swrap_sock *s, struct tcp_ends *e)
{
	endpoint_from(&s->peer, &e->peer);
	local_endpoint(s, e->peer.v6, &e->me);
	socket_marks(s, e->peer.v6, &e->tos, &e->ttl);
	return true;
}

static void start_batch(struct batch *b, struct swrap_pcap *t)
{
	b->n = 0;
	b->nhdr = 0;
	b->fd = trace_fd(t);
}

void swrap_trace_tcp_established(struct swrap_sock *s, bool connecting)
{
	struct tcp_ends e;
	tcp_ends(s, &e);
	uint32_t mine = isn(&e.me, &e.peer);
	uint32_t theirs = isn(&e.peer, &e.me);
	s->my_seq = mine + 1;
	s->peer_seq = theirs + 1;
	atomic_store(&s->trace_state, 0);
	if (s->trace == NULL || !connecting)
		return;
	struct batch b;
	start_batch(&b, s->trace);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	add_tcp(&b, &tv, &e.me, &e.peer, mine, 0, SWRAP_TCP_SYN, NULL, 0, e.tos, e.ttl);
	add_tcp(&b, &tv, &e.peer, &e.me, theirs, mine + 1, SWRAP_TCP_SYN | SWRAP_TCP_ACK, NULL, 0,
		0, SWRAP_PCAP_TTL);
	add_tcp(&b, &tv, &e.me, &e.peer, mine + 1, theirs + 1, SWRAP_TCP_ACK, NULL, 0, e.tos,
		e.ttl);
	flush(&b);
}

void swrap_trace_tcp_refused(struct swrap_sock *s, const union swrap_sockaddr *dst)
{
	if (s->trace == NULL)
		return;
	struct tcp_ends e;
	endpoint_from(dst, &e.peer);
	local_endpoint(s, e.peer.v6, &e.me);
	socket_marks(s, e.peer.v6, &e.tos, &e.ttl);
	uint32_t mine = isn(&e.me, &e.peer);
	struct batch b;
	start_batch(&b, s->trace);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	add_tcp(&b, &tv, &e.me, &e.peer, mine, 0, SWRAP_TCP_SYN, NULL, 0, e.tos, e.ttl);
	add_tcp(&b, &tv, &e.peer, &e.me, 0, mine + 1, SWRAP_TCP_RST | SWRAP_TCP_ACK, NULL, 0, 0,
		SWRAP_PCAP_TTL);
	flush(&b);
}

/* Skip n payload bytes. */
static void skip(struct cursor *c, size_t n)
{
	while (n > 0 && c->index < c->iovcnt) {
		size_t left = c->iov[c->index].iov_len - c->offset;
		size_t step = left < n ? left : n;
		c->offset += step;
		n -= step;
		if (c->offset == c->iov[c->index].iov_len) {
			c->index++;
			c->offset = 0;
		}
	}
}

/*
 * Data is recorded before it is handed to the kernel, so that the
 * receiver's ACK (recorded when it reads) can never come first in the file.
 * A send that takes less than offered leaves the rest recorded ahead; the
 * program's retry offers those bytes again, and they are not recorded twice.
 */
void swrap_trace_tcp_sending(struct swrap_sock *s, const struct iovec *iov, size_t iovcnt,
			     size_t len)
{
	if (s->trace == NULL || len <= s->ahead)
		return;
	struct tcp_ends e;
	tcp_ends(s, &e);
	unsigned mtu = s->cfg != NULL ? s->cfg->mtu : SWRAP_MTU_DEFAULT;
	size_t mss = mtu - (e.me.v6 ? SWRAP_PCAP_IPV6_OVERHEAD : SWRAP_PCAP_IPV4_OVERHEAD);
	size_t n = len - s->ahead;
	/* Several threads may send on one socket: each call takes its range. */
	uint32_t seq = __atomic_fetch_add(&s->my_seq, (uint32_t)n, __ATOMIC_RELAXED);
	struct batch b;
	start_batch(&b, s->trace);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	struct cursor c = {.iov = iov, .iovcnt = iovcnt};
	skip(&c, s->ahead);
	for (size_t done = 0; done < n;) {
		size_t seg = n - done < mss ? n - done : mss;
		uint8_t flags = SWRAP_TCP_ACK | (done + seg == n ? SWRAP_TCP_PSH : 0);
		add_tcp(&b, &tv, &e.me, &e.peer, seq + (uint32_t)done, s->peer_seq, flags, &c, seg,
			e.tos, e.ttl);
		done += seg;
	}
	flush(&b);
	s->ahead = (uint32_t)len;
}

void swrap_trace_tcp_sent(struct swrap_sock *s, ssize_t n)
{
	if (s->trace == NULL || n <= 0)
		return;
	s->ahead = (size_t)n >= s->ahead ? 0 : s->ahead - (uint32_t)n;
}

/* Record one segment without payload, now. */
static void record_bare(struct swrap_pcap *t, const struct endpoint *src,
			const struct endpoint *dst, uint32_t seq, uint32_t ack, uint8_t flags,
			uint8_t tos, uint8_t ttl)
{
	struct batch b;
	start_batch(&b, t);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	add_tcp(&b, &tv, src, dst, seq, ack, flags, NULL, 0, tos, ttl);
	flush(&b);
}

void swrap_trace_tcp_peer_reset(struct swrap_sock *s)
{
	if (s->trace == NULL)
		return;
	struct tcp_ends e;
	tcp_ends(s, &e);
	record_bare(s->trace, &e.peer, &e.me, s->peer_seq, s->my_seq,
		    SWRAP_TCP_RST | SWRAP_TCP_ACK, 0, SWRAP_PCAP_TTL);
}

void swrap_trace_tcp_received(struct swrap_sock *s, size_t n)
{
	if (s->trace == NULL)
		return;
	if (n == 0) {
		/* The peer's FIN; its ACK was recorded with it. */
		if (!(atomic_fetch_or(&s->trace_state, SWRAP_TRACE_EOF_SEEN) & SWRAP_TRACE_EOF_SEEN))
			__atomic_add_fetch(&s->peer_seq, 1, __ATOMIC_RELAXED);
		return;
	}
	uint32_t ack = __atomic_add_fetch(&s->peer_seq, (uint32_t)n, __ATOMIC_RELAXED);
	struct tcp_ends e;
	tcp_ends(s, &e);
	record_bare(s->trace, &e.me, &e.peer, s->my_seq, ack, SWRAP_TCP_ACK, e.tos, e.ttl);
}

void swrap_trace_tcp_closed(struct swrap_sock *s, int fd, bool reset)
{
	if (s->trace == NULL)
		return;
	unsigned state = atomic_fetch_or(&s->trace_state, SWRAP_TRACE_FIN_SENT);
	if (state & SWRAP_TRACE_FIN_SENT)
		return;
	char probe;
	if (!reset && !(state & SWRAP_TRACE_EOF_SEEN) &&
	    SWRAP_LIBC(recv)(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
		/* The peer closed first and its FIN was never read: our kernel
		 * has taken it into account all the same. */
		swrap_trace_tcp_received(s, 0);
	}
	struct tcp_ends e;
	tcp_ends(s, &e);
	struct batch b;
	start_batch(&b, s->trace);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	uint32_t seq = s->my_seq;
	if (reset) {
		add_tcp(&b, &tv, &e.me, &e.peer, seq, s->peer_seq, SWRAP_TCP_RST | SWRAP_TCP_ACK,
			NULL, 0, e.tos, e.ttl);
	} else {
		add_tcp(&b, &tv, &e.me, &e.peer, seq, s->peer_seq, SWRAP_TCP_FIN | SWRAP_TCP_ACK,
			NULL, 0, e.tos, e.ttl);
		s->my_seq = seq + 1;
		/* The peer's kernel acknowledges the FIN at once, whatever its
		 * program does. */
		add_tcp(&b, &tv, &e.peer, &e.me, s->peer_seq, seq + 1, SWRAP_TCP_ACK, NULL, 0,
				0, SWRAP_PCAP_TTL);
	}
	flush(&b);
}

/* ---- UDP */

static size_t udp_packet(uint8_t *buf, const struct endpoint *src, const struct endpoint *dst,
			 struct cursor *c, size_t n, uint8_t tos, uint8_t ttl, struct iovec *payload,
			 size_t *npayload, size_t room)
{
	uint64_t pseudo;
	size_t iph = ip_header(buf, src, dst, 17 /* UDP */, 8 + n, tos, ttl, true, &pseudo);
	uint8_t *u = buf + iph;
	put16(u, src->port);
	put16(u + 2, dst->port);
	put16(u + 4, (uint16_t)(8 + n));
	put16(u + 6, 0);
	uint64_t acc = 0;
	bool odd = false;
	*npayload = take(c, n, payload, room, &acc, &odd);
	odd = false;
	acc = sum_bytes(acc, u, 8, &odd) + pseudo;
	uint16_t sum = fold(acc);
	put16(u + 6, sum == 0 ? 0xFFFF : sum);
	return iph + 8;
}

/* ICMP(v6) port unreachable from dst back to src, quoting the datagram. */
static size_t icmp_unreachable(uint8_t *buf, const struct endpoint *src,
			       const struct endpoint *dst, const uint8_t *orig_hdr, size_t hdr_len,
			       const struct iovec *payload, size_t npayload)
{
	size_t quote_max = src->v6 ? SWRAP_PCAP_ICMP6_MAX - 40 - 8 : 28 /* IP header + 8 */;
	uint8_t quote[SWRAP_PCAP_ICMP6_MAX];
	size_t q = hdr_len < quote_max ? hdr_len : quote_max;
	memcpy(quote, orig_hdr, q);
	for (size_t i = 0; i < npayload && q < quote_max; i++) {
		size_t n = payload[i].iov_len < quote_max - q ? payload[i].iov_len : quote_max - q;
		memcpy(quote + q, payload[i].iov_base, n);
		q += n;
	}
	uint64_t pseudo;
	size_t iph = ip_header(buf, dst, src, src->v6 ? 58 : 1, 8 + q, 0, SWRAP_PCAP_TTL, false,
			       &pseudo);
	uint8_t *m = buf + iph;
	memset(m, 0, 8);
	m[0] = src->v6 ? 1 : 3;
	m[1] = src->v6 ? 4 : 3;
	memcpy(m + 8, quote, q);
	bool odd = false;
	uint64_t acc = sum_bytes(0, m, 8 + q, &odd);
	put16(m + 2, fold(src->v6 ? acc + pseudo : acc));
	return iph + 8 + q;
}

void swrap_trace_udp_sent(struct swrap_sock *s, const union swrap_sockaddr *dst,
			  const struct iovec *iov, size_t iovcnt, size_t n, bool unreachable)
{
	if (s->trace == NULL)
		return;
	int fd = trace_fd(s->trace);
	if (fd < 0)
		return;
	struct endpoint to, me;
	endpoint_from(dst, &to);
	local_endpoint(s, to.v6, &me);
	uint8_t tos, ttl;
	socket_marks(s, to.v6, &tos, &ttl);
	struct timeval tv;
	gettimeofday(&tv, NULL);

	struct iovec out[IOV_MAX];
	uint8_t rec[16 + 48];
	struct cursor c = {.iov = iov, .iovcnt = iovcnt};
	size_t npayload;
	size_t hdr = udp_packet(rec + 16, &me, &to, &c, n, tos, ttl, &out[1], &npayload,
				IOV_MAX - 2);
	record_header(rec, &tv, hdr + n);
	out[0].iov_base = rec;
	out[0].iov_len = 16 + hdr;
	size_t count = 1 + npayload;
	uint8_t icmp[16 + 40 + SWRAP_PCAP_ICMP6_MAX];
	if (unreachable) {
		size_t len = icmp_unreachable(icmp + 16, &me, &to, rec + 16, hdr, &out[1], npayload);
		record_header(icmp, &tv, len);
		out[count].iov_base = icmp;
		out[count].iov_len = 16 + len;
		count++;
	}
	ssize_t ignored = SWRAP_LIBC(writev)(fd, out, (int)count);
	(void)ignored;
}
