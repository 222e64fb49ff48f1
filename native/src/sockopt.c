/*
 * sockopt.c - getsockopt/setsockopt on emulated sockets.
 *
 * SOL_SOCKET options that a Unix socket has go to the kernel.  Inet options a
 * Unix socket lacks (TCP_NODELAY, IP_TOS, SO_REUSEPORT, ...) are kept per
 * socket and reported back, with Linux's defaults; unknown ones fail with
 * ENOPROTOOPT as on Linux.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <netinet/tcp.h>
#include <string.h>

#include "swrap.h"

enum opt_kind { OPT_INT, OPT_BOOL };

struct known_opt {
	int level;
	int name;
	int initial;
	enum opt_kind kind;
	int family; /* 0: any emulated family; else only this one */
};

static const struct known_opt known[] = {
	{SOL_SOCKET, SO_REUSEPORT, 0, OPT_BOOL, 0},
	{IPPROTO_TCP, TCP_NODELAY, 0, OPT_BOOL, 0},
	{IPPROTO_TCP, TCP_CORK, 0, OPT_BOOL, 0},
	{IPPROTO_TCP, TCP_QUICKACK, 1, OPT_BOOL, 0},
	{IPPROTO_TCP, TCP_MAXSEG, 536, OPT_INT, 0},
	{IPPROTO_TCP, TCP_KEEPIDLE, 7200, OPT_INT, 0},
	{IPPROTO_TCP, TCP_KEEPINTVL, 75, OPT_INT, 0},
	{IPPROTO_TCP, TCP_KEEPCNT, 9, OPT_INT, 0},
	{IPPROTO_TCP, TCP_SYNCNT, 6, OPT_INT, 0},
	{IPPROTO_TCP, TCP_LINGER2, 60, OPT_INT, 0},
	{IPPROTO_TCP, TCP_DEFER_ACCEPT, 0, OPT_INT, 0},
	{IPPROTO_TCP, TCP_WINDOW_CLAMP, 0, OPT_INT, 0},
	{IPPROTO_TCP, TCP_USER_TIMEOUT, 0, OPT_INT, 0},
	{IPPROTO_TCP, TCP_FASTOPEN, 0, OPT_INT, 0},
	{IPPROTO_IP, IP_TOS, 0, OPT_INT, 0},
	{IPPROTO_IP, IP_TTL, 64, OPT_INT, 0},
	{IPPROTO_IP, IP_PKTINFO, 0, OPT_BOOL, 0},
	{IPPROTO_IP, IP_RECVERR, 0, OPT_BOOL, 0},
	{IPPROTO_IP, IP_RECVTOS, 0, OPT_BOOL, 0},
	{IPPROTO_IP, IP_RECVTTL, 0, OPT_BOOL, 0},
	{IPPROTO_IP, IP_FREEBIND, 0, OPT_BOOL, 0},
	{IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 0, OPT_BOOL, 0},
	{IPPROTO_IP, IP_MTU_DISCOVER, 1, OPT_INT, 0},
	{IPPROTO_IPV6, IPV6_V6ONLY, 0, OPT_BOOL, AF_INET6},
	{IPPROTO_IPV6, IPV6_TCLASS, 0, OPT_INT, AF_INET6},
	{IPPROTO_IPV6, IPV6_RECVPKTINFO, 0, OPT_BOOL, AF_INET6},
	{IPPROTO_IPV6, IPV6_RECVERR, 0, OPT_BOOL, AF_INET6},
	{IPPROTO_IPV6, IPV6_RECVTCLASS, 0, OPT_BOOL, AF_INET6},
	{IPPROTO_IPV6, IPV6_UNICAST_HOPS, 64, OPT_INT, AF_INET6},
};

static const struct known_opt *find_known(const struct swrap_sock *s, int level, int name)
{
	if (level == IPPROTO_TCP && s->type != SOCK_STREAM)
		return NULL;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const struct known_opt *k = &known[i];
		if (k->level == level && k->name == name &&
		    (k->family == 0 || k->family == s->family))
			return k;
	}
	return NULL;
}

static struct swrap_sockopt *slot_for(struct swrap_sock *s, int level, int name, bool create)
{
	struct swrap_sockopt *free_slot = NULL;
	for (int i = 0; i < SWRAP_SOCKOPT_SLOTS; i++) {
		struct swrap_sockopt *o = &s->opts[i];
		/* A free slot has name 0 (IPPROTO_IP is level 0; no option we keep is 0). */
		if (o->level == level && o->name == name && o->name != 0)
			return o;
		if (o->name == 0 && free_slot == NULL)
			free_slot = o;
	}
	if (!create || free_slot == NULL)
		return NULL;
	free_slot->level = (int16_t)level;
	free_slot->name = (int16_t)name;
	return free_slot;
}

int swrap_sockopt_get(struct swrap_sock *s, int level, int name, int *value)
{
	const struct known_opt *k = find_known(s, level, name);
	if (k == NULL) {
		errno = ENOPROTOOPT;
		return -1;
	}
	struct swrap_sockopt *o = slot_for(s, level, name, false);
	*value = o != NULL ? o->value : k->initial;
	return 0;
}

void swrap_sockopt_refresh(struct swrap_sock *s)
{
	unsigned wants = 0;
	if (swrap_sockopt_on(s, IPPROTO_IP, IP_PKTINFO))
		wants |= SWRAP_WANT_PKTINFO;
	if (swrap_sockopt_on(s, IPPROTO_IPV6, IPV6_RECVPKTINFO))
		wants |= SWRAP_WANT_PKTINFO6;
	atomic_store(&s->wants, wants);
}

bool swrap_sockopt_on(struct swrap_sock *s, int level, int name)
{
	int value;
	return swrap_sockopt_get(s, level, name, &value) == 0 && value != 0;
}


/* Does an emulated socket have this protocol level at all? */
static bool level_exists(const struct swrap_sock *s, int level)
{
	return level == IPPROTO_IP || (level == IPPROTO_IPV6 && s->family == AF_INET6) ||
	       (level == IPPROTO_TCP && s->type == SOCK_STREAM) ||
	       (level == IPPROTO_UDP && s->type == SOCK_DGRAM);
}

static int put_bytes(const void *data, socklen_t len, void *optval, socklen_t *optlen)
{
	if (optval == NULL || optlen == NULL) {
		errno = EFAULT;
		return -1;
	}
	socklen_t n = *optlen < len ? *optlen : len;
	memcpy(optval, data, n);
	*optlen = n;
	return 0;
}

static int put_int(int value, void *optval, socklen_t *optlen)
{
	return put_bytes(&value, sizeof(value), optval, optlen);
}

/* A plausible TCP_INFO: the state the emulated connection is in, and segment
 * sizes from SOCKET_WRAPPER_MTU; no loss, no retransmission. */
static int tcp_info(struct swrap_sock *s, void *optval, socklen_t *optlen)
{
	struct tcp_info ti;
	memset(&ti, 0, sizeof(ti));
	unsigned f = atomic_load(&s->flags);
	ti.tcpi_state = (f & SWRAP_SOCK_LISTENING)   ? TCP_LISTEN
			: (f & SWRAP_SOCK_CONNECTED) ? TCP_ESTABLISHED
						     : TCP_CLOSE;
	unsigned mtu = s->cfg != NULL ? s->cfg->mtu : SWRAP_MTU_DEFAULT;
	unsigned mss = mtu - (s->family == AF_INET ? 40 : 60);
	ti.tcpi_pmtu = mtu;
	ti.tcpi_snd_mss = mss;
	ti.tcpi_rcv_mss = mss;
	ti.tcpi_advmss = mss;
	ti.tcpi_rto = 200000;
	ti.tcpi_ato = 40000;
	ti.tcpi_rtt = 50;
	ti.tcpi_rttvar = 25;
	ti.tcpi_snd_cwnd = 10;
	ti.tcpi_snd_ssthresh = 0x7fffffff;
	ti.tcpi_rcv_space = 65483;
	return put_bytes(&ti, sizeof(ti), optval, optlen);
}

SWRAP_EXPORT int getsockopt(int fd, int level, int name, void *optval, socklen_t *optlen)
{
	struct swrap_sock *s = swrap_table_get_or_adopt(fd);
	if (s == NULL)
		return SWRAP_LIBC(getsockopt)(fd, level, name, optval, optlen);
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_DOMAIN:
			return put_int(s->family, optval, optlen);
		case SO_PROTOCOL:
			return put_int(s->protocol, optval, optlen);
		case SO_ERROR:
			if (s->pending_error != 0) {
				int err = s->pending_error;
				s->pending_error = 0;
				return put_int(err, optval, optlen);
			}
			return SWRAP_LIBC(getsockopt)(fd, level, name, optval, optlen);
		case SO_REUSEPORT:
			break; /* emulated, below */
		default:
			return SWRAP_LIBC(getsockopt)(fd, level, name, optval, optlen);
		}
	}
	if (level == IPPROTO_TCP && s->type == SOCK_STREAM && name == TCP_INFO)
		return tcp_info(s, optval, optlen);
	if (level == IPPROTO_TCP && s->type == SOCK_STREAM && name == TCP_CONGESTION)
		return put_bytes("cubic", 6, optval, optlen);
	int value;
	if (swrap_sockopt_get(s, level, name, &value) != 0) {
		if (s->family == AF_INET && !level_exists(s, level))
			errno = EOPNOTSUPP; /* what IPv4's getsockopt says of other levels */
		return -1;
	}
	if (level == IPPROTO_IP && optlen != NULL && *optlen > 0 && *optlen < sizeof(int) &&
	    value >= 0 && value <= 255) {
		unsigned char byte = (unsigned char)value; /* as Linux: one byte if asked */
		return put_bytes(&byte, 1, optval, optlen);
	}
	return put_int(value, optval, optlen);
}

/* SOL_SOCKET options an accepted TCP socket inherits from its listener (the
 * kernel copies them; a Unix socket's accept does not). */
static const int inherited[] = {SO_REUSEADDR, SO_KEEPALIVE, SO_PRIORITY, SO_LINGER,
				SO_OOBINLINE, SO_RCVBUF, SO_SNDBUF};
#define N_INHERITED (sizeof(inherited) / sizeof(inherited[0]))

static int inherited_bit(int name)
{
	for (size_t i = 0; i < N_INHERITED; i++)
		if (inherited[i] == name)
			return (int)i;
	return -1;
}

bool swrap_sockopt_reuseaddr(const struct swrap_sock *s)
{
	return atomic_load(&s->sol_set) & (1u << inherited_bit(SO_REUSEADDR));
}

void swrap_sockopt_inherit(int listener_fd, struct swrap_sock *listener, int fd)
{
	unsigned set = atomic_load(&listener->sol_set);
	for (size_t i = 0; set != 0 && i < N_INHERITED; i++) {
		if (!(set & (1u << i)))
			continue;
		char buf[sizeof(struct linger) > sizeof(int) ? sizeof(struct linger) : sizeof(int)];
		socklen_t len = sizeof(buf);
		if (SWRAP_LIBC(getsockopt)(listener_fd, SOL_SOCKET, inherited[i], buf, &len) == 0)
			SWRAP_LIBC(setsockopt)(fd, SOL_SOCKET, inherited[i], buf, len);
	}
}

SWRAP_EXPORT int setsockopt(int fd, int level, int name, const void *optval, socklen_t optlen)
{
	struct swrap_sock *s = swrap_sock_checked(fd, false);
	if (s == NULL || (level == SOL_SOCKET && name != SO_REUSEPORT)) {
		int ret = SWRAP_LIBC(setsockopt)(fd, level, name, optval, optlen);
		int bit = s != NULL && ret == 0 ? inherited_bit(name) : -1;
		if (bit >= 0 && level == SOL_SOCKET)
			atomic_fetch_or(&s->sol_set, 1u << bit);
		return ret;
	}
	const struct known_opt *k = find_known(s, level, name);
	if (k == NULL) {
		errno = ENOPROTOOPT;
		return -1;
	}
	if (optval == NULL) {
		errno = EFAULT;
		return -1;
	}
	int value;
	if (level == IPPROTO_IP && optlen >= 1 && optlen < sizeof(int)) {
		value = *(const unsigned char *)optval; /* Linux takes IP options from a byte */
	} else if (optlen < sizeof(int)) {
		errno = EINVAL;
		return -1;
	} else {
		memcpy(&value, optval, sizeof(value));
	}
	if (k->kind == OPT_BOOL)
		value = value != 0;
	swrap_table_lock(); /* slots are shared by the threads using this socket */
	struct swrap_sockopt *o = slot_for(s, level, name, true);
	if (o != NULL)
		o->value = value;
	swrap_table_unlock();
	if (o == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (level != IPPROTO_TCP)
		swrap_sockopt_refresh(s);
	return 0;
}

/* ioctl: the queue sizes TCP and UDP report.  A Unix socket counts bytes
 * sent until the receiver reads them; on loopback they leave the send queue
 * at once, so the output queue reads 0 (and a listener has none). */
SWRAP_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || (request != SIOCOUTQ && request != SIOCOUTQNSD))
		return SWRAP_LIBC(ioctl)(fd, request, arg);
	if (atomic_load(&s->flags) & SWRAP_SOCK_LISTENING) {
		errno = EINVAL;
		return -1;
	}
	if (arg == NULL) {
		errno = EFAULT;
		return -1;
	}
	*(int *)arg = 0;
	return 0;
}
