/*
 * sockopt.c - getsockopt/setsockopt on emulated sockets.
 *
 * SOL_SOCKET options that a Unix socket has go to the kernel.  Inet options a
 * Unix socket lacks (TCP_NODELAY, IP_TOS, SO_REUSEPORT, ...) are kept per
 * socket and reported back, with Linux's defaults; unknown ones fail with
 * ENOPROTOOPT as on Linux.
 */
#include <errno.h>
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
		if (o->level == level && o->name == name && o->level != 0)
			return o;
		if (o->level == 0 && free_slot == NULL)
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

static int put_int(int value, void *optval, socklen_t *optlen)
{
	if (optval == NULL || optlen == NULL) {
		errno = EFAULT;
		return -1;
	}
	socklen_t n = *optlen < sizeof(int) ? *optlen : sizeof(int);
	memcpy(optval, &value, n);
	*optlen = n;
	return 0;
}

SWRAP_EXPORT int getsockopt(int fd, int level, int name, void *optval, socklen_t *optlen)
{
	struct swrap_sock *s = swrap_table_get(fd);
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
			break;
		case SO_REUSEPORT:
			break;
		default:
			return SWRAP_LIBC(getsockopt)(fd, level, name, optval, optlen);
		}
		if (name == SO_ERROR)
			return SWRAP_LIBC(getsockopt)(fd, level, name, optval, optlen);
	}
	int value;
	if (swrap_sockopt_get(s, level, name, &value) != 0)
		return -1;
	return put_int(value, optval, optlen);
}

SWRAP_EXPORT int setsockopt(int fd, int level, int name, const void *optval, socklen_t optlen)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || (level == SOL_SOCKET && name != SO_REUSEPORT))
		return SWRAP_LIBC(setsockopt)(fd, level, name, optval, optlen);
	const struct known_opt *k = find_known(s, level, name);
	if (k == NULL) {
		errno = ENOPROTOOPT;
		return -1;
	}
	if (optval == NULL) {
		errno = EFAULT;
		return -1;
	}
	if (optlen < sizeof(int)) {
		errno = EINVAL;
		return -1;
	}
	int value;
	memcpy(&value, optval, sizeof(value));
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
	return 0;
}
