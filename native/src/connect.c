/* connect.c - connect: emulated destination -> socket file, implicit bind,
 * the non-blocking EINPROGRESS / SO_ERROR protocol, and connected UDP. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "swrap.h"

static bool is_nonblocking(int fd)
{
	int fl = SWRAP_LIBC(fcntl)(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

static const unsigned udp_peer_flags =
	SWRAP_SOCK_CONNECTED | SWRAP_SOCK_DETACHED | SWRAP_SOCK_BCAST_PEER;

/* A port the connect took gives way with the disconnect, as in Linux: the
 * Unix socket cannot unbind, so a fresh one takes its place under fd. */
static void release_implicit_port(int fd, struct swrap_sock *s)
{
	int fresh = SWRAP_LIBC(socket)(AF_UNIX, SOCK_DGRAM, 0);
	if (fresh < 0)
		return;
	int fl = SWRAP_LIBC(fcntl)(fd, F_GETFL);
	int fdfl = SWRAP_LIBC(fcntl)(fd, F_GETFD);
	int on = 0;
	socklen_t len = sizeof(on);
	SWRAP_LIBC(getsockopt)(fd, SOL_SOCKET, SO_BROADCAST, &on, &len);
	if (SWRAP_LIBC(dup3)(fresh, fd, (fdfl >= 0 && (fdfl & FD_CLOEXEC)) ? O_CLOEXEC : 0) < 0) {
		SWRAP_LIBC(close)(fresh);
		return;
	}
	SWRAP_LIBC(close)(fresh);
	if (fl >= 0)
		SWRAP_LIBC(fcntl)(fd, F_SETFL, fl);
	if (on)
		SWRAP_LIBC(setsockopt)(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof(on));
	if ((atomic_load(&s->flags) & SWRAP_SOCK_OWNS_FILE) && s->owner_pid == getpid())
		swrap_unlink_files(s);
	atomic_fetch_and(&s->flags, ~(unsigned)(SWRAP_SOCK_BOUND | SWRAP_SOCK_OWNS_FILE |
						 SWRAP_SOCK_WILDCARD | SWRAP_SOCK_IMPLICIT));
	memset(&s->local, 0, sizeof(s->local));
	s->local.sa.sa_family = (sa_family_t)s->family;
	s->name_family = s->family;
	s->ino = 0;
}

/* connect(AF_UNSPEC): a UDP socket forgets its peer. */
static int disconnect(int fd, struct swrap_sock *s)
{
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	if (s->type == SOCK_STREAM) {
		errno = EINVAL; /* TCP reset-by-disconnect is not emulated */
		return -1;
	}
	if (SWRAP_LIBC(connect)(fd, &unspec, sizeof(unspec)) != 0)
		return -1;
	atomic_fetch_and(&s->flags, ~udp_peer_flags);
	memset(&s->peer, 0, sizeof(s->peer));
	s->peer.sa.sa_family = (sa_family_t)s->family;
	if (atomic_load(&s->flags) & SWRAP_SOCK_IMPLICIT)
		release_implicit_port(fd, s);
	return 0;
}

struct destination {
	unsigned iface;
	int name_family; /* AF_INET for IPv4 (also IPv4-mapped) destinations */
	bool broadcast;
};

/* Where a connect to `a` goes, or -1 with errno as Linux reports it. */
static int destination(const struct swrap_config *cfg, struct swrap_sock *s,
		       const union swrap_sockaddr *a, struct destination *d)
{
	bool mapped4;
	d->broadcast = false;
	d->name_family = s->family;
	switch (swrap_addr_classify(cfg->ipv4_net, a, &d->iface, &mapped4)) {
	case SWRAP_ADDR_IFACE:
		break;
	case SWRAP_ADDR_ANY:
		d->iface = cfg->default_iface; /* the kernel takes 0.0.0.0 as this host */
		break;
	case SWRAP_ADDR_BROADCAST:
		if (s->type != SOCK_DGRAM)
			goto unreachable;
		d->broadcast = true;
		break;
	case SWRAP_ADDR_FOREIGN:
		goto unreachable;
	}
	if (mapped4) {
		if (swrap_sockopt_on(s, IPPROTO_IPV6, IPV6_V6ONLY))
			goto unreachable;
		d->name_family = AF_INET;
	}
	return 0;
unreachable:
	swrap_log(SWRAP_LOG_DEBUG, "destination is not on the emulated network");
	errno = ENETUNREACH;
	return -1;
}

int swrap_implicit_bind(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
			bool wildcard, bool abstract)
{
	if (wildcard) {
		/* Like a UDP send from an unbound socket: 0.0.0.0:port. */
		memset(&s->local, 0, sizeof(s->local));
		s->local.sa.sa_family = (sa_family_t)s->family;
		atomic_fetch_or(&s->flags, SWRAP_SOCK_WILDCARD);
	} else if (s->name_family == AF_INET && s->family == AF_INET6)
		swrap_addr_make_mapped(cfg->ipv4_net, cfg->default_iface, 0, &s->local);
	else
		swrap_addr_make(cfg->ipv4_net, s->family, cfg->default_iface, 0, &s->local);
	if ((abstract ? swrap_bind_abstract(fd, s, cfg, cfg->default_iface)
		      : swrap_bind_file(fd, s, cfg, cfg->default_iface, 0)) == 0) {
		atomic_fetch_or(&s->flags, SWRAP_SOCK_IMPLICIT);
		return 0;
	}
	int err = errno;
	atomic_fetch_and(&s->flags, ~(unsigned)SWRAP_SOCK_WILDCARD);
	memset(&s->local, 0, sizeof(s->local));
	s->local.sa.sa_family = (sa_family_t)s->family;
	errno = err == EADDRINUSE ? EADDRNOTAVAIL : err;
	return -1;
}

/* The local address after a connect is a concrete one, as with the kernel. */
static void concrete_local(const struct swrap_config *cfg, struct swrap_sock *s)
{
	unsigned port = s->port;
	if (s->family == AF_INET6 && s->name_family == AF_INET)
		swrap_addr_make_mapped(cfg->ipv4_net, s->iface, port, &s->local);
	else
		swrap_addr_make(cfg->ipv4_net, s->family, s->iface, port, &s->local);
}

static void set_peer(const struct swrap_config *cfg, struct swrap_sock *s,
		     const struct destination *d, const union swrap_sockaddr *a)
{
	unsigned port = swrap_addr_port(a);
	if (d->broadcast)
		s->peer = *a;
	else if (s->family == AF_INET6 && d->name_family == AF_INET)
		swrap_addr_make_mapped(cfg->ipv4_net, d->iface, port, &s->peer);
	else
		swrap_addr_make(cfg->ipv4_net, s->family, d->iface, port, &s->peer);
	s->peer_iface = (uint8_t)d->iface;
}

/* UDP: a connect never fails for want of a receiver.  With one, the Unix
 * socket is connected too (fast sends); without, sends go by name. */
static int connect_dgram(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
			 const struct destination *d, const union swrap_sockaddr *a)
{
	unsigned set = SWRAP_SOCK_CONNECTED;
	if (d->broadcast) {
		int on = 0;
		socklen_t len = sizeof(on);
		SWRAP_LIBC(getsockopt)(fd, SOL_SOCKET, SO_BROADCAST, &on, &len);
		if (!on) {
			errno = EACCES;
			return -1;
		}
		set |= SWRAP_SOCK_DETACHED | SWRAP_SOCK_BCAST_PEER;
	} else {
		struct sockaddr_un un = {.sun_family = AF_UNIX};
		if (swrap_sock_path(un.sun_path, s, cfg, d->name_family, d->iface,
				    swrap_addr_port(a)) != 0)
			return -1;
		if (SWRAP_LIBC(connect)(fd, (const struct sockaddr *)&un, sizeof(un)) != 0) {
			if (errno != ENOENT && errno != ECONNREFUSED)
				return -1;
			set |= SWRAP_SOCK_DETACHED;
		}
	}
	if (set & SWRAP_SOCK_DETACHED) {
		/* Drop an association a previous connect made. */
		struct sockaddr unspec = {.sa_family = AF_UNSPEC};
		SWRAP_LIBC(connect)(fd, &unspec, sizeof(unspec));
	}
	set_peer(cfg, s, d, a);
	concrete_local(cfg, s);
	atomic_fetch_and(&s->flags, ~udp_peer_flags);
	atomic_fetch_or(&s->flags, set);
	return 0;
}

static int connect_stream(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
			  const struct destination *d, const union swrap_sockaddr *a)
{
	/* Repeated connects after a non-blocking one answer as Linux does:
	 * 0 once when it completed, then EISCONN; the refusal if SO_ERROR has
	 * not taken it yet, then ECONNABORTED. */
	unsigned flags = atomic_fetch_and(&s->flags, ~(unsigned)SWRAP_SOCK_IN_PROGRESS);
	if (flags & SWRAP_SOCK_IN_PROGRESS)
		return 0;
	if (flags & SWRAP_SOCK_CONNECTED) {
		errno = EISCONN;
		return -1;
	}
	if (s->pending_error != 0) {
		errno = s->pending_error;
		s->pending_error = 0;
		return -1;
	}
	if (flags & SWRAP_SOCK_REFUSED) {
		errno = ECONNABORTED;
		return -1;
	}
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (swrap_sock_path(un.sun_path, s, cfg, d->name_family, d->iface, swrap_addr_port(a)) != 0)
		return -1;
	/* With a trace, the handshake is recorded before the real connect, so
	 * that nothing the server sends can precede it in the file. */
	union swrap_sockaddr local_before = s->local;
	bool recorded = false;
	struct stat st;
	if (s->trace != NULL && stat(un.sun_path, &st) == 0) {
		set_peer(cfg, s, d, a);
		concrete_local(cfg, s);
		swrap_trace_tcp_established(s, true);
		recorded = true;
	}
	int ret = SWRAP_LIBC(connect)(fd, (const struct sockaddr *)&un, sizeof(un));
	int err = errno;
	if (ret != 0) {
		if (err == ENOENT)
			err = ECONNREFUSED; /* nobody has that address */
		if (err == ECONNREFUSED) {
			union swrap_sockaddr dst;
			set_peer(cfg, s, d, a);
			dst = s->peer;
			if (recorded) /* the listener went away in between */
				swrap_trace_tcp_peer_reset(s);
			else
				swrap_trace_tcp_refused(s, &dst);
			memset(&s->peer, 0, sizeof(s->peer));
			s->peer.sa.sa_family = (sa_family_t)s->family;
			s->local = local_before;
		}
		if (err == ECONNREFUSED && is_nonblocking(fd)) {
			/* Loopback TCP reports the refusal through SO_ERROR. */
			s->pending_error = ECONNREFUSED;
			atomic_fetch_or(&s->flags, SWRAP_SOCK_REFUSED);
			err = EINPROGRESS;
		}
		swrap_log(SWRAP_LOG_DEBUG, "fd %d: connect %s: %s", fd, un.sun_path, strerror(err));
		errno = err;
		return -1;
	}
	set_peer(cfg, s, d, a);
	concrete_local(cfg, s);
	if (!recorded)
		swrap_trace_tcp_established(s, true);
	atomic_fetch_or(&s->flags, SWRAP_SOCK_CONNECTED);
	swrap_log(SWRAP_LOG_DEBUG, "fd %d connected to %s", fd, un.sun_path);
	if (is_nonblocking(fd)) {
		/* Loopback TCP never completes a non-blocking connect at once. */
		atomic_fetch_or(&s->flags, SWRAP_SOCK_IN_PROGRESS);
		errno = EINPROGRESS;
		return -1;
	}
	return 0;
}

SWRAP_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	struct swrap_sock *s = swrap_sock_checked(fd, false);
	if (s == NULL)
		return SWRAP_LIBC(connect)(fd, addr, len);
	const struct swrap_config *cfg = swrap_config_for_wrapped();
	if (cfg == NULL)
		return -1;
	const struct sockaddr *sa = SWRAP_SA(addr);
	if (sa != NULL && len >= sizeof(sa_family_t) && sa->sa_family == AF_UNSPEC)
		return disconnect(fd, s);
	union swrap_sockaddr a;
	struct destination d;
	if (swrap_addr_in(s, sa, len, &a) != 0 || destination(cfg, s, &a, &d) != 0)
		return -1;
	if (!(atomic_load(&s->flags) & SWRAP_SOCK_BOUND)) {
		s->name_family = (int16_t)d.name_family;
		bool abstract = false;
		if (s->type == SOCK_STREAM) {
			/* A client of our own listener (or of nobody) needs no file. */
			char path[SWRAP_SUN_PATH_SIZE];
			bool exists;
			abstract = swrap_sock_path(path, s, cfg, d.name_family, d.iface,
						   swrap_addr_port(&a)) == 0 &&
				   (swrap_listener_is_ours(path, &exists) || !exists);
		}
		if (swrap_implicit_bind(fd, s, cfg, false, abstract) != 0) {
			s->name_family = s->family;
			return -1;
		}
	} else if (d.name_family != s->name_family &&
		   !(atomic_load(&s->flags) & SWRAP_SOCK_DUAL)) {
		errno = ENETUNREACH; /* bound to an IPv6 name, asked for IPv4 */
		return -1;
	}
	if (s->type == SOCK_DGRAM)
		return connect_dgram(fd, s, cfg, &d, &a);
	return connect_stream(fd, s, cfg, &d, &a);
}
