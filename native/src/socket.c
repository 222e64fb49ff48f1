/* socket.c - socket, bind, listen, getsockname, getpeername. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "swrap.h"

const struct swrap_config *swrap_config_for_wrapped(void)
{
	const struct swrap_config *cfg = swrap_config_current();
	if (!cfg->enabled) {
		errno = ENETDOWN;
		return NULL;
	}
	if (cfg->error != 0) {
		errno = cfg->error;
		return NULL;
	}
	return cfg;
}

int swrap_addr_in(const struct swrap_sock *s, const struct sockaddr *sa, socklen_t len,
		  union swrap_sockaddr *out)
{
	socklen_t need = s->family == AF_INET ? sizeof(struct sockaddr_in) : 24; /* RFC 2133 */
	if (sa == NULL || len < need) {
		errno = EINVAL;
		return -1;
	}
	if (sa->sa_family != s->family) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, sa, len < sizeof(*out) ? len : sizeof(*out));
	return 0;
}

/* The protocol of an emulated socket, or 0 when the kernel would refuse it. */
static int emulated_protocol(int type, int protocol)
{
	if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
		return IPPROTO_TCP;
	if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
		return IPPROTO_UDP;
	return 0;
}

SWRAP_EXPORT int socket(int domain, int type, int protocol)
{
	if (domain != AF_INET && domain != AF_INET6)
		return SWRAP_LIBC(socket)(domain, type, protocol);
	bool inert;
	const struct swrap_config *cfg = swrap_config_for_socket(&inert);
	if (inert)
		return SWRAP_LIBC(socket)(domain, type, protocol);
	if (cfg == NULL)
		return -1;

	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	int proto = emulated_protocol(base, protocol);
	if (proto == 0) {
		/* Raw, ICMP, SCTP...: not emulated, and never the real network. */
		swrap_log(SWRAP_LOG_WARN, "type %d protocol %d is not emulated", base, protocol);
		errno = base > SOCK_PACKET ? EINVAL : EPROTONOSUPPORT;
		return -1;
	}
	struct swrap_sock *s = swrap_sock_new(cfg->max_sockets);
	if (s == NULL) {
		swrap_log(SWRAP_LOG_WARN, "SOCKET_WRAPPER_MAX_SOCKETS=%u reached",
			  cfg->max_sockets);
		return -1;
	}
	int fd = swrap_fresh_fd(SWRAP_LIBC(socket)(AF_UNIX, type, 0));
	if (fd < 0) {
		swrap_sock_discard(s);
		return -1;
	}
	s->family = (int16_t)domain;
	s->name_family = (int16_t)domain;
	s->type = (int16_t)base;
	s->protocol = (int16_t)proto;
	s->local.sa.sa_family = (sa_family_t)domain;
	s->peer.sa.sa_family = (sa_family_t)domain;
	s->cfg = cfg;
	s->trace = swrap_pcap_for(cfg);
	if (swrap_table_install(fd, s) != 0) {
		int err = errno;
		swrap_sock_discard(s);
		SWRAP_LIBC(close)(fd);
		errno = err;
		return -1;
	}
	swrap_log(SWRAP_LOG_TRACE, "fd %d: family %d type %d", fd, domain, base);
	return fd;
}

SWRAP_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	struct swrap_sock *s = swrap_sock_checked(fd, false);
	if (s == NULL)
		return SWRAP_LIBC(bind)(fd, addr, len);
	const struct swrap_config *cfg = swrap_config_for_wrapped();
	if (cfg == NULL)
		return -1;
	union swrap_sockaddr a;
	if (swrap_addr_in(s, SWRAP_SA(addr), len, &a) != 0)
		return -1;
	if (atomic_load(&s->flags) & SWRAP_SOCK_BOUND) {
		errno = EINVAL;
		return -1;
	}
	unsigned iface = 0;
	bool mapped4;
	bool v6only = s->family == AF_INET6 && swrap_sockopt_on(s, IPPROTO_IPV6, IPV6_V6ONLY);
	unsigned add_flags = 0;
	int name_family = s->family;
	switch (swrap_addr_classify(cfg->ipv4_net, &a, &iface, &mapped4)) {
	case SWRAP_ADDR_IFACE:
		if (mapped4 && v6only) {
			errno = EADDRNOTAVAIL;
			return -1;
		}
		if (mapped4)
			name_family = AF_INET; /* an IPv6 socket used for IPv4 only */
		break;
	case SWRAP_ADDR_ANY:
		iface = cfg->default_iface;
		add_flags = SWRAP_SOCK_WILDCARD;
		if (mapped4)
			name_family = AF_INET;
		else if (s->family == AF_INET6 && !v6only)
			add_flags |= SWRAP_SOCK_DUAL; /* [::] takes IPv4 too, as on Linux */
		break;
	case SWRAP_ADDR_BROADCAST:
	case SWRAP_ADDR_FOREIGN:
		swrap_log(SWRAP_LOG_DEBUG, "fd %d: not an emulated local address", fd);
		errno = EADDRNOTAVAIL;
		return -1;
	}
	union swrap_sockaddr before = s->local;
	s->local = a;
	s->name_family = (int16_t)name_family;
	atomic_fetch_or(&s->flags, add_flags);
	if (swrap_bind_file(fd, s, cfg, iface, swrap_addr_port(&a)) != 0) {
		int err = errno;
		s->local = before;
		s->name_family = s->family;
		atomic_fetch_and(&s->flags, ~add_flags);
		errno = err;
		return -1;
	}
	if (s->type == SOCK_DGRAM && swrap_addr_port(&a) != 0)
		swrap_mark_ours(s); /* a UDP server: may receive tagged broadcasts */
	return 0;
}

SWRAP_EXPORT int listen(int fd, int backlog)
{
	struct swrap_sock *s = swrap_sock_checked(fd, false);
	if (s == NULL)
		return SWRAP_LIBC(listen)(fd, backlog);
	if (s->type != SOCK_STREAM) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (!(atomic_load(&s->flags) & SWRAP_SOCK_BOUND)) {
		/* Like the kernel: listening unbound binds a wildcard ephemeral port. */
		const struct swrap_config *cfg = swrap_config_for_wrapped();
		if (cfg == NULL)
			return -1;
		unsigned add = SWRAP_SOCK_WILDCARD;
		if (s->family == AF_INET6 && !swrap_sockopt_on(s, IPPROTO_IPV6, IPV6_V6ONLY))
			add |= SWRAP_SOCK_DUAL;
		atomic_fetch_or(&s->flags, add);
		if (swrap_bind_file(fd, s, cfg, cfg->default_iface, 0) != 0) {
			atomic_fetch_and(&s->flags, ~add);
			return -1;
		}
	}
	if (SWRAP_LIBC(listen)(fd, backlog) != 0)
		return -1;
	if (!(atomic_fetch_or(&s->flags, SWRAP_SOCK_LISTENING) & SWRAP_SOCK_LISTENING))
		swrap_mark_ours(s);
	return 0;
}

SWRAP_EXPORT int getsockname(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	struct swrap_sock *s = swrap_table_get_or_adopt(fd);
	if (s == NULL)
		return SWRAP_LIBC(getsockname)(fd, addr, len);
	if (SWRAP_SA(addr) == NULL || len == NULL) {
		errno = EFAULT;
		return -1;
	}
	union swrap_sockaddr local = s->local;
	swrap_addr_copy_out(&local, swrap_addr_len(s->family), SWRAP_SA(addr), len);
	return 0;
}

SWRAP_EXPORT int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	struct swrap_sock *s = swrap_table_get_or_adopt(fd);
	if (s == NULL)
		return SWRAP_LIBC(getpeername)(fd, addr, len);
	if (!(atomic_load(&s->flags) & SWRAP_SOCK_CONNECTED)) {
		errno = ENOTCONN;
		return -1;
	}
	if (SWRAP_SA(addr) == NULL || len == NULL) {
		errno = EFAULT;
		return -1;
	}
	union swrap_sockaddr peer = s->peer;
	swrap_addr_copy_out(&peer, swrap_addr_len(s->family), SWRAP_SA(addr), len);
	return 0;
}

/* bindresvport(3): a port from 600 to 1023, as glibc picks them.  (Its
 * header went with Sun RPC; the function is still in libc.) */
int bindresvport(int fd, struct sockaddr_in *sin);
SWRAP_EXPORT int bindresvport(int fd, struct sockaddr_in *sin)
{
	struct swrap_sock *s = swrap_sock_checked(fd, false);
	if (s == NULL)
		return SWRAP_LIBC(bindresvport)(fd, sin);
	struct sockaddr_in a = {.sin_family = AF_INET};
	if (sin != NULL)
		a = *sin;
	if (a.sin_family != AF_INET || s->family != AF_INET) {
		errno = EPFNOSUPPORT;
		return -1;
	}
	enum { FIRST = 600, LAST = 1023 };
	unsigned start = (unsigned)getpid() % (LAST - FIRST + 1);
	for (unsigned i = 0; i <= LAST - FIRST; i++) {
		a.sin_port = htons((uint16_t)(FIRST + (start + i) % (LAST - FIRST + 1)));
		if (bind(fd, (const struct sockaddr *)&a, sizeof(a)) == 0) {
			if (sin != NULL)
				sin->sin_port = a.sin_port;
			return 0;
		}
		if (errno != EADDRINUSE)
			return -1;
	}
	errno = EADDRINUSE;
	return -1;
}
