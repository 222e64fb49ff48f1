/*
 * names.c - binding the Unix socket behind an emulated socket to its name in
 * SOCKET_WRAPPER_DIR: explicit ports, ephemeral ports, the IPv4 name of a
 * dual-stack IPv6 socket, and reclaiming names left behind by processes that
 * died without closing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swrap.h"

/* Where the next ephemeral search starts, shared by the threads of a process
 * so that they do not all probe the same ports. */
static atomic_uint ephemeral_cursor;

static int bind_path(int fd, const char *path)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	strcpy(un.sun_path, path);
	return SWRAP_LIBC(bind)(fd, (const struct sockaddr *)&un, sizeof(un));
}

/* The abstract-namespace form of a name: "\0" + path.  Used by clients of
 * our own listeners: no file to create and remove per connection. */
static int bind_abstract(int fd, const char *path)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len + 1 > sizeof(un.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(un.sun_path + 1, path, len);
	return SWRAP_LIBC(bind)(fd, (const struct sockaddr *)&un,
				(socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len));
}

int swrap_sock_path(char *out, const struct swrap_sock *s, const struct swrap_config *cfg,
		    int fam, unsigned iface, unsigned port)
{
	return swrap_path_format(out, cfg->dir, swrap_type_char(fam, s->type), iface, port);
}

/* A row of /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path".
 * Does it name path, and does it hold the name (rather than borrow it: an
 * accepted connection shows its listener's path)?  With `strict`, only
 * listeners, unconnected bound sockets and datagram sockets hold a name. */
#define ACCEPTCON 0x10000u

static bool row_holds(const char *row, size_t len, const char *path, size_t path_len, bool strict)
{
	const char *field[7];
	size_t i = 0;
	for (int f = 0; f < 7; f++) {
		while (i < len && row[i] == ' ')
			i++;
		field[f] = row + i;
		while (i < len && row[i] != ' ')
			i++;
	}
	if (i >= len || row[i] != ' ')
		return false;
	i++;
	if (len - i != path_len || memcmp(row + i, path, path_len) != 0)
		return false;
	if (!strict)
		return true;
	unsigned long flags = strtoul(field[3], NULL, 16);
	unsigned long type = strtoul(field[4], NULL, 16);
	unsigned long state = strtoul(field[5], NULL, 16);
	return (flags & ACCEPTCON) || state == 1 /* unconnected */ || type == SOCK_DGRAM;
}

static bool bound_is_live(const char *path, bool strict)
{
	int fd = SWRAP_LIBC(open)("/proc/net/unix", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* cannot tell: keep the name rather than steal it */
	char buf[16384];
	size_t have = 0;
	size_t path_len = strlen(path);
	bool live = false;
	for (;;) {
		ssize_t n = SWRAP_LIBC(read)(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < have && !live; i++) {
			if (buf[i] != '\n')
				continue;
			live = row_holds(buf + start, i - start, path, path_len, strict);
			start = i + 1;
		}
		if (live)
			break;
		if (start == 0 && have == sizeof(buf))
			start = have; /* a row longer than the buffer: not one of ours */
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	SWRAP_LIBC(close)(fd);
	return live;
}

/* The IPv6 name of the same iface and port (X for T, Y for U). */
static void ipv6_twin(char *twin, const char *path)
{
	size_t len = strlen(path);
	memcpy(twin, path, len + 1);
	char *type = twin + len - SWRAP_NAME_LEN;
	*type = *type == SWRAP_TYPE_TCP4 ? SWRAP_TYPE_TCP6 : SWRAP_TYPE_UDP6;
}

bool swrap_path_is_held(const char *path, bool strict)
{
	if (bound_is_live(path, strict))
		return true;
	/* An IPv4 name may be the second name of a live dual-stack IPv6 socket:
	 * then it is the same file as the IPv6 name, which the socket is bound to. */
	char type = path[strlen(path) - SWRAP_NAME_LEN];
	if (type != SWRAP_TYPE_TCP4 && type != SWRAP_TYPE_UDP4)
		return false;
	char twin[SWRAP_SUN_PATH_SIZE];
	ipv6_twin(twin, path);
	struct stat a, b;
	return stat(path, &a) == 0 && stat(twin, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev && bound_is_live(twin, strict);
}

/* Run op (bind or link) on a name that is taken: if its owner is dead, remove
 * the file and try again, holding a lock on the directory so that two
 * processes doing the same cannot remove each other's fresh socket. */
static int reclaim(const char *dir, const char *path, int fd, const char *link_from,
		   bool strict)
{
	if (swrap_path_is_held(path, strict)) {
		errno = EADDRINUSE;
		return -1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int ret;
	while ((ret = flock(dfd, LOCK_EX)) != 0 && errno == EINTR)
		;
	if (ret == 0) {
		if (swrap_path_is_held(path, strict)) {
			errno = EADDRINUSE;
			ret = -1;
		} else {
			swrap_log(SWRAP_LOG_DEBUG, "removing %s, left by a process that died", path);
			unlink(path);
			ret = link_from != NULL ? link(link_from, path) : bind_path(fd, path);
			if (ret != 0 && errno == EEXIST)
				errno = EADDRINUSE;
		}
	}
	int saved = errno;
	close(dfd); /* releases the lock */
	errno = saved;
	return ret;
}

/* Taken names are reclaimed from dead owners.  With SO_REUSEADDR, as in
 * TCP, connections a closed listener left behind do not hold its port. */
static int bind_or_reclaim(int fd, const char *dir, const char *path, bool strict)
{
	if (bind_path(fd, path) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return -1;
	return reclaim(dir, path, fd, NULL, strict);
}

/* The IPv4 name of a dual-stack socket: a hard link to its IPv6 file, so
 * that IPv4 clients connecting to it reach the same socket. */
static int link_or_reclaim(const char *dir, const char *from, const char *to, bool strict)
{
	if (link(from, to) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	return reclaim(dir, to, -1, from, strict);
}

enum bind_how { BIND_FILE, BIND_RECLAIMING, BIND_ABSTRACT };

/* Try iface:port; with dual stack, both names or neither. */
static int try_bind(int fd, const struct swrap_sock *s, const struct swrap_config *cfg,
		    unsigned iface, unsigned port, enum bind_how how)
{
	char path[SWRAP_SUN_PATH_SIZE];
	char v4[SWRAP_SUN_PATH_SIZE];
	bool dual = atomic_load(&s->flags) & SWRAP_SOCK_DUAL;
	bool reclaiming = how == BIND_RECLAIMING;
	if (swrap_sock_path(path, s, cfg, s->name_family, iface, port) != 0 ||
	    (dual && swrap_sock_path(v4, s, cfg, AF_INET, iface, port) != 0))
		return -1;
	if (how == BIND_ABSTRACT)
		return bind_abstract(fd, path);
	/* A Unix socket binds once: make sure of the IPv4 name first. */
	if (dual && access(v4, F_OK) == 0 &&
	    (!reclaiming || swrap_path_is_held(v4, swrap_sockopt_reuseaddr(s)))) {
		errno = EADDRINUSE;
		return -1;
	}
	bool strict = swrap_sockopt_reuseaddr(s);
	int ret = reclaiming ? bind_or_reclaim(fd, cfg->dir, path, strict) : bind_path(fd, path);
	if (ret != 0 || !dual)
		return ret;
	ret = reclaiming ? link_or_reclaim(cfg->dir, path, v4, strict) : link(path, v4);
	if (ret == 0)
		return 0;
	/* Another process took the IPv4 name in between: give the IPv6 name
	 * back.  The Unix socket stays bound to the removed name, so a retry on
	 * this socket fails with EINVAL; a new socket works. */
	int err = errno == EEXIST ? EADDRINUSE : errno;
	unlink(path);
	errno = err;
	return -1;
}

/* The next candidate port: a pseudo-random walk over the range (as Linux
 * randomises), distinct per process and per attempt, so that processes
 * picking ports at once do not march through each other's blocks. */
static unsigned ephemeral_candidate(void)
{
	uint64_t x = (uint64_t)getpid() << 32 |
		     atomic_fetch_add_explicit(&ephemeral_cursor, 1, memory_order_relaxed);
	x += 0x9E3779B97F4A7C15ull; /* splitmix64 */
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	x ^= x >> 31;
	return SWRAP_EPHEMERAL_FIRST + (unsigned)(x % (SWRAP_EPHEMERAL_LAST - SWRAP_EPHEMERAL_FIRST + 1));
}

static int bind_name(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
		     unsigned iface, unsigned port, bool abstract)
{
	if (port != 0) {
		if (try_bind(fd, s, cfg, iface, port, BIND_RECLAIMING) != 0)
			return -1;
	} else {
		/* Random probes, then (if the range is nearly full) a sweep. */
		const unsigned range = SWRAP_EPHEMERAL_LAST - SWRAP_EPHEMERAL_FIRST + 1;
		const unsigned probes = 64;
		unsigned start = ephemeral_candidate();
		unsigned i;
		for (i = 0; i < probes + range; i++) {
			port = i < probes ? ephemeral_candidate()
					  : SWRAP_EPHEMERAL_FIRST +
						    (start - SWRAP_EPHEMERAL_FIRST + i) % range;
			if (i < probes && s->type == SOCK_STREAM &&
			    swrap_timewait_held(cfg, swrap_type_char(s->name_family, s->type), iface,
						port))
				continue; /* closed a moment ago: its old connection may linger */
			if (try_bind(fd, s, cfg, iface, port, abstract ? BIND_ABSTRACT : BIND_FILE) == 0)
				break;
			if (errno != EADDRINUSE)
				return -1;
		}
		if (i == probes + range) {
			errno = EADDRINUSE;
			return -1;
		}
	}
	s->iface = (uint8_t)iface;
	s->port = (uint16_t)port;
	s->cfg = cfg;
	s->owner_pid = getpid();
	swrap_addr_set_port(&s->local, port);
	atomic_fetch_or(&s->flags, SWRAP_SOCK_BOUND | (abstract ? 0 : SWRAP_SOCK_OWNS_FILE));
	swrap_log(SWRAP_LOG_DEBUG, "fd %d bound to %s%c%02X%04X%s", fd, abstract ? "@" : "",
		  swrap_type_char(s->name_family, s->type), iface, port,
		  (atomic_load(&s->flags) & SWRAP_SOCK_DUAL) ? " (and its IPv4 name)" : "");
	return 0;
}

int swrap_bind_file(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
		    unsigned iface, unsigned port)
{
	return bind_name(fd, s, cfg, iface, port, false);
}

int swrap_bind_abstract(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
			unsigned iface)
{
	return bind_name(fd, s, cfg, iface, 0, true);
}

/* Listeners and UDP servers of ours carry the sticky bit (meaningless on a
 * socket file, and never set by cwrap): it tells our peers that they may
 * use abstract names (clients, tagged broadcasts), which our accept() and
 * recvfrom() understand and cwrap's do not. */
void swrap_mark_ours(const struct swrap_sock *s)
{
	char path[SWRAP_SUN_PATH_SIZE];
	struct stat st;
	if (s->cfg == NULL || swrap_sock_path(path, s, s->cfg, s->name_family, s->iface, s->port) != 0 ||
	    stat(path, &st) != 0)
		return;
	chmod(path, (st.st_mode & 07777) | S_ISVTX);
}

bool swrap_listener_is_ours(const char *path, bool *exists)
{
	struct stat st;
	*exists = stat(path, &st) == 0;
	return *exists && S_ISSOCK(st.st_mode) && (st.st_mode & S_ISVTX);
}

void swrap_unlink_files(const struct swrap_sock *s)
{
	char path[SWRAP_SUN_PATH_SIZE];
	if (s->cfg == NULL)
		return;
	if (swrap_sock_path(path, s, s->cfg, s->name_family, s->iface, s->port) == 0)
		unlink(path);
	if ((atomic_load(&s->flags) & SWRAP_SOCK_DUAL) &&
	    swrap_sock_path(path, s, s->cfg, AF_INET, s->iface, s->port) == 0)
		unlink(path);
}
