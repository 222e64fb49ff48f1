/* addr.c - emulated addresses <-> interface ids and socket file names.
 * Pure functions: no state, no system calls. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "swrap.h"

static bool ipv4_classify(uint32_t net, uint32_t host, enum swrap_addr_kind *kind,
			  unsigned *iface)
{
	uint32_t bcast = net == SWRAP_NET_TEN ? SWRAP_BCAST_TEN : SWRAP_BCAST_LOOPBACK;
	if (host == INADDR_ANY) {
		*kind = SWRAP_ADDR_ANY;
	} else if (host == INADDR_BROADCAST || host == bcast) {
		*kind = SWRAP_ADDR_BROADCAST;
	} else if ((host & 0xFFFFFF00u) == net && (host & 0xFFu) >= SWRAP_IFACE_MIN &&
		   (host & 0xFFu) <= SWRAP_IFACE_MAX) {
		*kind = SWRAP_ADDR_IFACE;
		*iface = host & 0xFFu;
	} else {
		*kind = SWRAP_ADDR_FOREIGN;
	}
	return true;
}

static bool is_emulated_ipv6_prefix(const uint8_t *b)
{
	static const uint8_t prefix[15] = {
		SWRAP_IPV6_BYTE0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		SWRAP_IPV6_BYTE12, SWRAP_IPV6_BYTE13, SWRAP_IPV6_BYTE14,
	};
	return memcmp(b, prefix, sizeof(prefix)) == 0;
}

enum swrap_addr_kind swrap_addr_classify(uint32_t ipv4_net, const union swrap_sockaddr *a,
					 unsigned *iface, bool *mapped4)
{
	enum swrap_addr_kind kind = SWRAP_ADDR_FOREIGN;
	*mapped4 = false;
	if (a->sa.sa_family == AF_INET) {
		ipv4_classify(ipv4_net, ntohl(a->in.sin_addr.s_addr), &kind, iface);
		return kind;
	}
	if (a->sa.sa_family != AF_INET6)
		return SWRAP_ADDR_FOREIGN;
	const struct in6_addr *in6 = &a->in6.sin6_addr;
	if (IN6_IS_ADDR_UNSPECIFIED(in6))
		return SWRAP_ADDR_ANY;
	if (IN6_IS_ADDR_V4MAPPED(in6)) {
		uint32_t host;
		memcpy(&host, &in6->s6_addr[12], 4);
		*mapped4 = true;
		ipv4_classify(ipv4_net, ntohl(host), &kind, iface);
		return kind;
	}
	const uint8_t *b = in6->s6_addr;
	if (is_emulated_ipv6_prefix(b) && b[15] >= SWRAP_IFACE_MIN && b[15] <= SWRAP_IFACE_MAX) {
		*iface = b[15];
		return SWRAP_ADDR_IFACE;
	}
	return SWRAP_ADDR_FOREIGN;
}

void swrap_addr_make(uint32_t ipv4_net, int family, unsigned iface, unsigned port,
		     union swrap_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		out->in.sin_family = AF_INET;
		out->in.sin_port = htons((uint16_t)port);
		out->in.sin_addr.s_addr = htonl(ipv4_net | (iface & 0xFFu));
		return;
	}
	out->in6.sin6_family = AF_INET6;
	out->in6.sin6_port = htons((uint16_t)port);
	uint8_t *b = out->in6.sin6_addr.s6_addr;
	b[0] = SWRAP_IPV6_BYTE0;
	b[12] = SWRAP_IPV6_BYTE12;
	b[13] = SWRAP_IPV6_BYTE13;
	b[14] = SWRAP_IPV6_BYTE14;
	b[15] = (uint8_t)iface;
}

void swrap_addr_make_mapped(uint32_t ipv4_net, unsigned iface, unsigned port,
			    union swrap_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	out->in6.sin6_family = AF_INET6;
	out->in6.sin6_port = htons((uint16_t)port);
	uint8_t *b = out->in6.sin6_addr.s6_addr;
	b[10] = 0xFF;
	b[11] = 0xFF;
	uint32_t host = htonl(ipv4_net | (iface & 0xFFu));
	memcpy(&b[12], &host, 4);
}

socklen_t swrap_addr_len(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

unsigned swrap_addr_port(const union swrap_sockaddr *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

void swrap_addr_set_port(union swrap_sockaddr *a, unsigned port)
{
	if (a->sa.sa_family == AF_INET)
		a->in.sin_port = htons((uint16_t)port);
	else
		a->in6.sin6_port = htons((uint16_t)port);
}

char swrap_type_char(int family, int socktype)
{
	bool stream = socktype == SOCK_STREAM;
	if (family == AF_INET)
		return stream ? SWRAP_TYPE_TCP4 : SWRAP_TYPE_UDP4;
	return stream ? SWRAP_TYPE_TCP6 : SWRAP_TYPE_UDP6;
}

int swrap_type_family(char type)
{
	switch (type) {
	case SWRAP_TYPE_TCP4:
	case SWRAP_TYPE_UDP4:
		return AF_INET;
	case SWRAP_TYPE_TCP6:
	case SWRAP_TYPE_UDP6:
		return AF_INET6;
	default:
		return 0;
	}
}

void swrap_name_format(char *out, char type, unsigned iface, unsigned port)
{
	static const char hex[] = "0123456789ABCDEF";
	out[0] = type;
	out[1] = hex[(iface >> 4) & 0xF];
	out[2] = hex[iface & 0xF];
	out[3] = hex[(port >> 12) & 0xF];
	out[4] = hex[(port >> 8) & 0xF];
	out[5] = hex[(port >> 4) & 0xF];
	out[6] = hex[port & 0xF];
	out[7] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int swrap_name_parse(const char *path, char *type, unsigned *iface, unsigned *port)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash != NULL ? slash + 1 : path;
	if (strlen(name) != SWRAP_NAME_LEN || swrap_type_family(name[0]) == 0)
		return -1;
	unsigned v[6];
	for (int i = 0; i < 6; i++) {
		int h = hex_value(name[1 + i]);
		if (h < 0)
			return -1;
		v[i] = (unsigned)h;
	}
	unsigned id = v[0] << 4 | v[1];
	if (id < SWRAP_IFACE_MIN || id > SWRAP_IFACE_MAX)
		return -1;
	*type = name[0];
	*iface = id;
	*port = v[2] << 12 | v[3] << 8 | v[4] << 4 | v[5];
	return 0;
}

int swrap_path_format(char *out, const char *dir, char type, unsigned iface, unsigned port)
{
	size_t dir_len = strlen(dir);
	if (dir_len + 1 + SWRAP_NAME_LEN + 1 > SWRAP_SUN_PATH_SIZE) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(out, dir, dir_len);
	out[dir_len] = '/';
	swrap_name_format(out + dir_len + 1, type, iface, port);
	return 0;
}

void swrap_addr_copy_out(const union swrap_sockaddr *a, socklen_t len, struct sockaddr *addr,
			 socklen_t *addrlen)
{
	if (addr == NULL || addrlen == NULL)
		return;
	socklen_t room = *addrlen;
	memcpy(addr, a, room < len ? room : len);
	*addrlen = len;
}
