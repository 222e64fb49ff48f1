/* accept.c - accept and accept4: the peer's file name gives its address. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "swrap.h"

/* A broadcast's sender name: the name and a tag as the last characters of an
 * abstract address (see dgram.c); the tags are not hex digits, so no plain
 * name ends in one. */
static bool broadcast_tag(const char *name, size_t len, char *tag)
{
	if (len < SWRAP_NAME_LEN + 1 || (name[len - 1] != 'L' && name[len - 1] != 'N'))
		return false;
	*tag = name[len - 1];
	return true;
}

void swrap_peer_from_unix(const struct swrap_config *cfg, int family, const struct sockaddr_un *un,
			  socklen_t unlen, union swrap_sockaddr *out, char *bcast)
{
	char tag = 0;
	char type;
	unsigned iface, port;
	size_t path_len = unlen > offsetof(struct sockaddr_un, sun_path)
				  ? unlen - offsetof(struct sockaddr_un, sun_path)
				  : 0;
	char path[SWRAP_SUN_PATH_SIZE + 1];
	if (path_len > SWRAP_SUN_PATH_SIZE)
		path_len = SWRAP_SUN_PATH_SIZE;
	const char *name = un->sun_path;
	if (path_len > 0 && name[0] == '\0') { /* abstract: a client of ours */
		name++;
		path_len--;
		if (broadcast_tag(name, path_len, &tag)) {
			name += path_len - 1 - SWRAP_NAME_LEN;
			path_len = SWRAP_NAME_LEN;
		}
	}
	memcpy(path, name, path_len);
	path[path_len] = '\0';
	if (bcast != NULL)
		*bcast = tag;
	if (path_len == 0 || path[0] == '\0' || swrap_name_parse(path, &type, &iface, &port) != 0) {
		/* Not one of ours (an unwrapped program using the file directly). */
		memset(out, 0, sizeof(*out));
		out->sa.sa_family = (sa_family_t)family;
		return;
	}
	if (family == AF_INET6 && swrap_type_family(type) == AF_INET)
		swrap_addr_make_mapped(cfg->ipv4_net, iface, port, out);
	else /* same family; or a dual-stack IPv6 peer, reachable by its IPv4 name */
		swrap_addr_make(cfg->ipv4_net, family, iface, port, out);
}

static int wrap_accepted(const struct swrap_config *cfg, struct swrap_sock *listener, int nfd,
			 const struct sockaddr_un *un, socklen_t unlen)
{
	struct swrap_sock *c = swrap_sock_new(cfg->max_sockets);
	if (c == NULL)
		return -1;
	c->family = listener->family;
	c->name_family = listener->name_family;
	c->type = listener->type;
	c->protocol = listener->protocol;
	c->iface = listener->iface;
	c->port = listener->port;
	c->cfg = cfg;
	c->trace = swrap_pcap_for(cfg);
	memcpy(c->opts, listener->opts, sizeof(c->opts)); /* inherited, as in TCP */
	atomic_store(&c->wants, atomic_load(&listener->wants));
	swrap_peer_from_unix(cfg, c->family, un, unlen, &c->peer, NULL);
	unsigned peer_iface = 0;
	bool mapped4;
	if (swrap_addr_classify(cfg->ipv4_net, &c->peer, &peer_iface, &mapped4) == SWRAP_ADDR_IFACE)
		c->peer_iface = (uint8_t)peer_iface;
	bool mapped = c->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&c->peer.in6.sin6_addr);
	if (mapped)
		swrap_addr_make_mapped(cfg->ipv4_net, c->iface, c->port, &c->local);
	else
		swrap_addr_make(cfg->ipv4_net, c->family, c->iface, c->port, &c->local);
	atomic_store(&c->flags, SWRAP_SOCK_BOUND | SWRAP_SOCK_CONNECTED);
	swrap_trace_tcp_established(c, false);
	if (swrap_table_install(nfd, c) != 0) {
		swrap_sock_discard(c);
		return -1;
	}
	return 0;
}

static int accept_common(int fd, struct swrap_sock *s, struct sockaddr *addr,
			 socklen_t *addrlen, int flags, bool four)
{
	const struct swrap_config *cfg = swrap_config_for_wrapped();
	if (cfg == NULL)
		return -1;
	struct sockaddr_un un;
	socklen_t unlen = sizeof(un);
	memset(&un, 0, sizeof(un));
	int nfd = four ? SWRAP_LIBC(accept4)(fd, (struct sockaddr *)&un, &unlen, flags)
		       : SWRAP_LIBC(accept)(fd, (struct sockaddr *)&un, &unlen);
	if (nfd < 0)
		return -1;
	swrap_sockopt_inherit(fd, s, nfd);
	if (wrap_accepted(cfg, s, nfd, &un, unlen) != 0) {
		int err = errno;
		SWRAP_LIBC(close)(nfd);
		errno = err;
		return -1;
	}
	struct swrap_sock *c = swrap_table_get(nfd);
	swrap_addr_copy_out(&c->peer, swrap_addr_len(c->family), addr, addrlen);
	bool named = unlen > sizeof(sa_family_t) + 1;
	swrap_log(SWRAP_LOG_DEBUG, "fd %d accepted fd %d from %s%s", fd, nfd,
		  named && un.sun_path[0] == '\0' ? "@" : "",
		  !named ? "(unnamed)" : un.sun_path[0] == '\0' ? un.sun_path + 1 : un.sun_path);
	return nfd;
}

SWRAP_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *addrlen)
{
	struct swrap_sock *s = swrap_table_get_or_adopt(fd);
	if (s == NULL)
		return swrap_fresh_fd(SWRAP_LIBC(accept)(fd, addr, addrlen));
	return accept_common(fd, s, SWRAP_SA(addr), addrlen, 0, false);
}

SWRAP_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *addrlen, int flags)
{
	struct swrap_sock *s = swrap_table_get_or_adopt(fd);
	if (s == NULL)
		return swrap_fresh_fd(SWRAP_LIBC(accept4)(fd, addr, addrlen, flags));
	return accept_common(fd, s, SWRAP_SA(addr), addrlen, flags, true);
}
