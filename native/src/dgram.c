/*
 * dgram.c - UDP over Unix datagram sockets: destinations by name, implicit
 * bind on the first send, broadcast to every interface, emulated source
 * addresses and IP_PKTINFO / IPV6_PKTINFO on receive.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "swrap.h"

/* Largest UDP payload: 65535 - IP header - UDP header. */
#define UDP4_MAX 65507
#define UDP6_MAX 65527

static size_t iov_total(const struct msghdr *msg)
{
	size_t total = 0;
	for (size_t i = 0; i < (size_t)msg->msg_iovlen; i++)
		total += msg->msg_iov[i].iov_len;
	return total;
}

/* Send to one name; a datagram nobody receives is lost, not an error. */
static ssize_t send_named(int fd, const struct msghdr *msg, int flags, const char *path,
			  size_t total, bool *unreachable)
{
	*unreachable = false;
	struct sockaddr_un un;
	un.sun_family = AF_UNIX;
	size_t len = strlen(path);
	memcpy(un.sun_path, path, len + 1);
	socklen_t unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	ssize_t n;
	if (msg->msg_iovlen == 1 && msg->msg_controllen == 0) {
		/* sendto: the kernel's shorter path for the common case */
		n = SWRAP_LIBC(sendto)(fd, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, flags,
				       (const struct sockaddr *)&un, unlen);
	} else {
		struct msghdr m = *msg;
		m.msg_name = &un;
		m.msg_namelen = unlen;
		n = SWRAP_LIBC(sendmsg)(fd, &m, flags);
	}
	if (n < 0 && (errno == ENOENT || errno == ECONNREFUSED || errno == EPERM)) {
		*unreachable = errno != EPERM;
		return (ssize_t)total; /* no receiver, or one connected elsewhere */
	}
	return n;
}

/* A broadcast goes out of a second, short-lived socket whose abstract name
 * is the sender's own name plus a tag: 'L' for 255.255.255.255, 'N' for
 * the network's broadcast address.  Receivers of ours read the sender's
 * address and the broadcast destination (IP_PKTINFO) from it; it is used
 * only towards sockets of ours (marked files), as cwrap could not parse it. */
static int tagged_sender(const struct swrap_sock *s, const struct swrap_config *cfg, char tag)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	size_t dir_len = strlen(cfg->dir);
	if (1 + dir_len + SWRAP_NAME_LEN + 1 > sizeof(un.sun_path))
		return -1;
	memcpy(un.sun_path + 1, cfg->dir, dir_len);
	swrap_name_format(un.sun_path + 1 + dir_len, swrap_type_char(s->name_family, s->type),
			  s->iface, s->port);
	un.sun_path[1 + dir_len + SWRAP_NAME_LEN] = tag;
	int fd = SWRAP_LIBC(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + dir_len +
				    SWRAP_NAME_LEN + 1);
	if (SWRAP_LIBC(bind)(fd, (const struct sockaddr *)&un, len) != 0) {
		/* Another thread is broadcasting from this socket: go untagged. */
		SWRAP_LIBC(close)(fd);
		return -1;
	}
	return fd;
}

static ssize_t send_broadcast(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
			      const struct msghdr *msg, int flags, const union swrap_sockaddr *dest,
			      size_t total)
{
	int on = 0;
	socklen_t len = sizeof(on);
	SWRAP_LIBC(getsockopt)(fd, SOL_SOCKET, SO_BROADCAST, &on, &len);
	if (!on) {
		errno = EACCES; /* as Linux, without SO_BROADCAST */
		return -1;
	}
	bool limited = dest->sa.sa_family == AF_INET
			       ? dest->in.sin_addr.s_addr == htonl(INADDR_BROADCAST)
			       : dest->in6.sin6_addr.s6_addr32[3] == htonl(INADDR_BROADCAST);
	int tagged = tagged_sender(s, cfg, limited ? 'L' : 'N');
	unsigned port = swrap_addr_port(dest);
	ssize_t ret = (ssize_t)total;
	/* Every socket bound to the port, on any interface, gets a copy. */
	for (unsigned iface = SWRAP_IFACE_MIN; iface <= SWRAP_IFACE_MAX; iface++) {
		char path[SWRAP_SUN_PATH_SIZE];
		if (swrap_sock_path(path, s, cfg, AF_INET, iface, port) != 0) {
			ret = -1;
			break;
		}
		bool exists;
		bool ours = swrap_listener_is_ours(path, &exists);
		if (!exists)
			continue;
		bool unreachable;
		int from = ours && tagged >= 0 ? tagged : fd;
		if (send_named(from, msg, flags | MSG_DONTWAIT, path, total, &unreachable) < 0 &&
		    errno != EAGAIN) {
			ret = -1;
			break;
		}
	}
	if (tagged >= 0) {
		int err = errno;
		SWRAP_LIBC(close)(tagged);
		errno = err;
	}
	return ret;
}

ssize_t swrap_dgram_connected_result(int fd, struct swrap_sock *s, ssize_t n, size_t len)
{
	if (n >= 0 || errno != ECONNREFUSED)
		return n;
	/* The peer's socket is gone.  As with UDP this send succeeds and the
	 * next call reports ECONNREFUSED; sends go by name from now on, which
	 * reaches a restarted peer. */
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	SWRAP_LIBC(connect)(fd, &unspec, sizeof(unspec));
	atomic_fetch_or(&s->flags, SWRAP_SOCK_DETACHED);
	s->pending_error = ECONNREFUSED;
	return (ssize_t)len;
}

ssize_t swrap_dgram_sendmsg(int fd, struct swrap_sock *s, const struct msghdr *msg, int flags)
{
	unsigned sflags = atomic_load(&s->flags);
	if (msg->msg_name == NULL && !(sflags & SWRAP_SOCK_CONNECTED)) {
		errno = EDESTADDRREQ;
		return -1;
	}
	if (msg->msg_name == NULL && !(sflags & SWRAP_SOCK_DETACHED))
		return swrap_dgram_connected_result(fd, s, SWRAP_LIBC(sendmsg)(fd, msg, flags),
						    iov_total(msg));
	const struct swrap_config *cfg = s->cfg;
	if (cfg == NULL && (cfg = swrap_config_for_wrapped()) == NULL)
		return -1;

	union swrap_sockaddr dest;
	if (msg->msg_name != NULL) {
		if (swrap_addr_in(s, msg->msg_name, msg->msg_namelen, &dest) != 0)
			return -1;
	} else {
		dest = s->peer;
	}
	size_t total = iov_total(msg);
	if (total > (s->family == AF_INET ? UDP4_MAX : UDP6_MAX)) {
		errno = EMSGSIZE;
		return -1;
	}
	unsigned iface = 0;
	bool mapped4;
	enum swrap_addr_kind kind = swrap_addr_classify(cfg->ipv4_net, &dest, &iface, &mapped4);
	bool v6_bound = (sflags & SWRAP_SOCK_BOUND) && s->name_family == AF_INET6 &&
			!(sflags & SWRAP_SOCK_DUAL); /* has an IPv6 source only */
	if (kind == SWRAP_ADDR_FOREIGN || (mapped4 && kind != SWRAP_ADDR_IFACE) ||
	    (mapped4 && (v6_bound || swrap_sockopt_on(s, IPPROTO_IPV6, IPV6_V6ONLY)))) {
		errno = ENETUNREACH;
		return -1;
	}
	if (kind == SWRAP_ADDR_ANY)
		iface = cfg->default_iface; /* 0.0.0.0 is this host */
	int name_family = mapped4 || (kind == SWRAP_ADDR_BROADCAST) ? AF_INET : s->family;
	if (!(sflags & SWRAP_SOCK_BOUND)) {
		s->name_family = (int16_t)name_family;
		if (swrap_implicit_bind(fd, s, cfg, true, false) != 0) {
			s->name_family = s->family;
			return -1;
		}
	}
	unsigned port = swrap_addr_port(&dest);
	ssize_t n;
	bool unreachable = false;
	if (kind == SWRAP_ADDR_BROADCAST) {
		n = send_broadcast(fd, s, cfg, msg, flags, &dest, total);
	} else {
		char path[SWRAP_SUN_PATH_SIZE];
		if (swrap_sock_path(path, s, cfg, name_family, iface, port) != 0)
			return -1;
		n = send_named(fd, msg, flags, path, total, &unreachable);
		if (unreachable && msg->msg_name == NULL)
			s->pending_error = ECONNREFUSED; /* ICMP to a connected socket */
		if (kind == SWRAP_ADDR_ANY) /* the packet goes to this host's address */
			swrap_addr_make(cfg->ipv4_net, name_family, iface, port, &dest);
	}
	if (n >= 0 && s->trace != NULL)
		swrap_trace_udp_sent(s, &dest, msg->msg_iov, msg->msg_iovlen, (size_t)n,
				     unreachable);
	return n;
}

/* Append one control message; MSG_CTRUNC if there is no room. */
static void add_cmsg(struct msghdr *msg, size_t capacity, int level, int type, const void *data,
		     size_t len)
{
	size_t used = CMSG_ALIGN((size_t)msg->msg_controllen);
	if (msg->msg_control == NULL || used + CMSG_SPACE(len) > capacity) {
		msg->msg_flags |= MSG_CTRUNC;
		return;
	}
	struct cmsghdr *c = (struct cmsghdr *)((char *)msg->msg_control + used);
	memset(c, 0, CMSG_SPACE(len));
	c->cmsg_len = CMSG_LEN(len);
	c->cmsg_level = level;
	c->cmsg_type = type;
	memcpy(CMSG_DATA(c), data, len);
	msg->msg_controllen = used + CMSG_SPACE(len);
}

/* The destination of a received datagram as IP_PKTINFO and/or IPV6_PKTINFO,
 * as far as the socket asked for them (Linux gives an IPv6 socket both for
 * IPv4 traffic). */
static void add_pktinfo(struct swrap_sock *s, struct msghdr *msg, size_t capacity,
			bool from_ipv4, char bcast)
{
	const struct swrap_config *cfg = s->cfg;
	if (cfg == NULL || atomic_load_explicit(&s->wants, memory_order_relaxed) == 0)
		return;
	bool want4 = (s->family == AF_INET || from_ipv4) &&
		     swrap_sockopt_on(s, IPPROTO_IP, IP_PKTINFO);
	bool want6 = s->family == AF_INET6 && swrap_sockopt_on(s, IPPROTO_IPV6, IPV6_RECVPKTINFO);
	union swrap_sockaddr here;
	if (want4) {
		swrap_addr_make(cfg->ipv4_net, AF_INET, s->iface, 0, &here);
		struct in_pktinfo pi = {.ipi_ifindex = 1};
		pi.ipi_spec_dst = here.in.sin_addr;
		pi.ipi_addr = here.in.sin_addr;
		if (bcast != 0) /* the destination was a broadcast address */
			pi.ipi_addr.s_addr = htonl(bcast == 'L' ? INADDR_BROADCAST
					     : cfg->ipv4_net == SWRAP_NET_TEN ? SWRAP_BCAST_TEN
									     : SWRAP_BCAST_LOOPBACK);
		add_cmsg(msg, capacity, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
	}
	if (want6) {
		if (from_ipv4)
			swrap_addr_make_mapped(cfg->ipv4_net, s->iface, 0, &here);
		else
			swrap_addr_make(cfg->ipv4_net, AF_INET6, s->iface, 0, &here);
		struct in6_pktinfo pi = {.ipi6_ifindex = 1};
		pi.ipi6_addr = here.in6.sin6_addr;
		if (bcast != 0)
			pi.ipi6_addr.s6_addr32[3] = htonl(bcast == 'L' ? INADDR_BROADCAST
						  : cfg->ipv4_net == SWRAP_NET_TEN ? SWRAP_BCAST_TEN
										  : SWRAP_BCAST_LOOPBACK);
		add_cmsg(msg, capacity, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
	}
}

ssize_t swrap_dgram_recvfrom(int fd, struct swrap_sock *s, void *buf, size_t len, int flags,
			     struct sockaddr *addr, socklen_t *addrlen)
{
	struct sockaddr_un un;
	socklen_t unlen = sizeof(un);
	un.sun_family = AF_UNIX;
	un.sun_path[0] = '\0';
	ssize_t n = SWRAP_LIBC(recvfrom)(fd, buf, len, flags, (struct sockaddr *)&un, &unlen);
	if (n < 0)
		return n;
	const struct swrap_config *cfg = s->cfg != NULL ? s->cfg : swrap_config_last();
	union swrap_sockaddr from;
	swrap_peer_from_unix(cfg, s->family, &un, unlen, &from, NULL);
	swrap_addr_copy_out(&from, swrap_addr_len(s->family), addr, addrlen);
	return n;
}

ssize_t swrap_dgram_recvmsg(int fd, struct swrap_sock *s, struct msghdr *msg, int flags)
{
	struct sockaddr_un un;
	memset(&un, 0, sizeof(un));
	void *name = msg->msg_name;
	socklen_t namelen = msg->msg_namelen;
	size_t capacity = msg->msg_controllen;
	msg->msg_name = &un;
	msg->msg_namelen = sizeof(un);
	ssize_t n = SWRAP_LIBC(recvmsg)(fd, msg, flags);
	int err = errno;
	socklen_t unlen = msg->msg_namelen;
	msg->msg_name = name;
	msg->msg_namelen = namelen;
	if (n < 0) {
		errno = err;
		return n;
	}
	const struct swrap_config *cfg = s->cfg != NULL ? s->cfg : swrap_config_last();
	union swrap_sockaddr from;
	char bcast;
	swrap_peer_from_unix(cfg, s->family, &un, unlen, &from, &bcast);
	if (name != NULL)
		swrap_addr_copy_out(&from, swrap_addr_len(s->family), name, &msg->msg_namelen);
	bool from_ipv4 = from.sa.sa_family == AF_INET ||
			 IN6_IS_ADDR_V4MAPPED(&from.in6.sin6_addr);
	add_pktinfo(s, msg, capacity, from_ipv4, bcast);
	return n;
}
