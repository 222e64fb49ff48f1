/* connect.c - connect: emulated destination -> socket file, implicit bind,
 * and the non-blocking EINPROGRESS / SO_ERROR protocol. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "swrap.h"

static bool is_nonblocking(int fd)
{
	int fl = SWRAP_LIBC(fcntl)(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

/* Unconnected datagram sockets: connect(AF_UNSPEC) dissolves the association. */
static int disconnect(int fd, struct swrap_sock *s)
{
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	if (s->type == SOCK_STREAM) {
		errno = EINVAL; /* TCP reset-by-disconnect is not emulated */
		return -1;
	}
	if (SWRAP_LIBC(connect)(fd, &unspec, sizeof(unspec)) != 0)
		return -1;
	atomic_fetch_and(&s->flags, ~(unsigned)SWRAP_SOCK_CONNECTED);
	return 0;
}

/* Where a connect to `a` goes: the interface of the destination file. */
static int destination_iface(const struct swrap_config *cfg, const union swrap_sockaddr *a,
			     unsigned *iface)
{
	bool mapped4;
	switch (swrap_addr_classify(cfg->ipv4_net, a, iface, &mapped4)) {
	case SWRAP_ADDR_IFACE:
		if (!mapped4)
			return 0;
		break; /* IPv4-mapped destinations come with dual stack */
	case SWRAP_ADDR_ANY:
		/* Like the kernel, which takes 0.0.0.0 as this host. */
		*iface = cfg->default_iface;
		return 0;
	case SWRAP_ADDR_BROADCAST:
	case SWRAP_ADDR_FOREIGN:
		break;
	}
	errno = ENETUNREACH;
	return -1;
}

/* Bind an unbound client to an ephemeral port on the default interface, so
 * that its peer sees a real emulated address. */
static int implicit_bind(int fd, struct swrap_sock *s, const struct swrap_config *cfg)
{
	swrap_addr_make(cfg->ipv4_net, s->family, cfg->default_iface, 0, &s->local);
	if (swrap_bind_file(fd, s, cfg, cfg->default_iface, 0) == 0)
		return 0;
	int err = errno;
	memset(&s->local, 0, sizeof(s->local));
	s->local.sa.sa_family = (sa_family_t)s->family;
	errno = err == EADDRINUSE ? EADDRNOTAVAIL : err;
	return -1;
}

SWRAP_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL)
		return SWRAP_LIBC(connect)(fd, addr, len);
	const struct swrap_config *cfg = swrap_config_for_wrapped();
	if (cfg == NULL)
		return -1;
	const struct sockaddr *sa = SWRAP_SA(addr);
	if (sa != NULL && len >= sizeof(sa_family_t) && sa->sa_family == AF_UNSPEC)
		return disconnect(fd, s);
	union swrap_sockaddr a;
	if (swrap_addr_in(s, sa, len, &a) != 0)
		return -1;
	unsigned flags = atomic_load(&s->flags);
	if (s->type == SOCK_STREAM && (flags & SWRAP_SOCK_CONNECTED)) {
		errno = EISCONN;
		return -1;
	}
	if (s->type == SOCK_STREAM && s->pending_error != 0) {
		/* A refused non-blocking connect that nobody asked about yet. */
		errno = s->pending_error;
		s->pending_error = 0;
		return -1;
	}
	unsigned iface;
	if (destination_iface(cfg, &a, &iface) != 0) {
		swrap_log(SWRAP_LOG_DEBUG, "fd %d: destination is not on the emulated network", fd);
		return -1;
	}
	unsigned port = swrap_addr_port(&a);
	if (!(flags & SWRAP_SOCK_BOUND) && implicit_bind(fd, s, cfg) != 0)
		return -1;

	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (swrap_path_format(un.sun_path, cfg->dir, swrap_type_char(s->family, s->type), iface,
			      port) != 0)
		return -1;
	int ret = SWRAP_LIBC(connect)(fd, (const struct sockaddr *)&un, sizeof(un));
	int err = errno;
	if (ret != 0 && err == ENOENT)
		err = ECONNREFUSED; /* nobody has that address */
	if (ret != 0 && s->type == SOCK_STREAM && err == ECONNREFUSED && is_nonblocking(fd)) {
		/* Loopback TCP reports the refusal through SO_ERROR. */
		s->pending_error = ECONNREFUSED;
		err = EINPROGRESS;
	}
	if (ret != 0) {
		swrap_log(SWRAP_LOG_DEBUG, "fd %d: connect %s: %s", fd, un.sun_path, strerror(err));
		errno = err;
		return -1;
	}
	swrap_addr_make(cfg->ipv4_net, s->family, iface, port, &s->peer);
	if (flags & SWRAP_SOCK_WILDCARD || !(flags & SWRAP_SOCK_BOUND)) {
		/* The local address is now a concrete one, as after a kernel connect. */
		unsigned local_port = swrap_addr_port(&s->local);
		swrap_addr_make(cfg->ipv4_net, s->family, s->iface, local_port, &s->local);
	}
	atomic_fetch_or(&s->flags, SWRAP_SOCK_CONNECTED);
	swrap_log(SWRAP_LOG_DEBUG, "fd %d connected to %s", fd, un.sun_path);
	if (s->type == SOCK_STREAM && is_nonblocking(fd)) {
		/* Loopback TCP never completes a non-blocking connect at once. */
		errno = EINPROGRESS;
		return -1;
	}
	return 0;
}
