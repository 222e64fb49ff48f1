/*
 * names.c - binding the Unix socket behind an emulated socket to its name in
 * SOCKET_WRAPPER_DIR: explicit ports, ephemeral ports, and reclaiming names
 * left behind by processes that died without closing.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
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

/* Does the line (a row of /proc/net/unix) name path?  Rows are seven fields,
 * then the path, which runs to the end of the line. */
static bool row_names(const char *row, size_t len, const char *path, size_t path_len)
{
	size_t i = 0;
	for (int field = 0; field < 7; field++) {
		while (i < len && row[i] == ' ')
			i++;
		while (i < len && row[i] != ' ')
			i++;
	}
	if (i >= len || row[i] != ' ')
		return false;
	i++;
	return len - i == path_len && memcmp(row + i, path, path_len) == 0;
}

bool swrap_path_is_live(const char *path)
{
	int fd = open("/proc/net/unix", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true; /* cannot tell: keep the name rather than steal it */
	char buf[16384];
	size_t have = 0;
	size_t path_len = strlen(path);
	bool live = false;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		size_t start = 0;
		for (size_t i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			if (row_names(buf + start, i - start, path, path_len)) {
				live = true;
				break;
			}
			start = i + 1;
		}
		if (live)
			break;
		if (start == 0 && have == sizeof(buf))
			have = 0; /* a row longer than the buffer: not one of ours */
		memmove(buf, buf + start, have - start);
		have -= start;
	}
	close(fd);
	return live;
}

/* The name is taken: if its owner is dead, remove the file and bind again,
 * holding a lock on the directory so that two processes doing the same cannot
 * remove each other's fresh socket. */
static int bind_reclaiming(int fd, const char *dir, const char *path)
{
	if (swrap_path_is_live(path)) {
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
		if (swrap_path_is_live(path)) {
			errno = EADDRINUSE;
			ret = -1;
		} else {
			swrap_log(SWRAP_LOG_DEBUG, "removing %s, left by a process that died", path);
			unlink(path);
			ret = bind_path(fd, path);
		}
	}
	int saved = errno;
	close(dfd); /* releases the lock */
	errno = saved;
	return ret;
}

static unsigned ephemeral_start(void)
{
	unsigned seed = (unsigned)getpid() * 2654435761u;
	return seed + atomic_fetch_add_explicit(&ephemeral_cursor, 1, memory_order_relaxed);
}

int swrap_bind_file(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
		    unsigned iface, unsigned port)
{
	char type = swrap_type_char(s->family, s->type);
	char path[SWRAP_SUN_PATH_SIZE];

	if (port != 0) {
		if (swrap_path_format(path, cfg->dir, type, iface, port) != 0)
			return -1;
		if (bind_path(fd, path) != 0 &&
		    (errno != EADDRINUSE || bind_reclaiming(fd, cfg->dir, path) != 0))
			return -1;
	} else {
		const unsigned range = SWRAP_EPHEMERAL_LAST - SWRAP_EPHEMERAL_FIRST + 1;
		unsigned start = ephemeral_start();
		unsigned i;
		for (i = 0; i < range; i++) {
			port = SWRAP_EPHEMERAL_FIRST + (start + i) % range;
			if (swrap_path_format(path, cfg->dir, type, iface, port) != 0)
				return -1;
			if (bind_path(fd, path) == 0)
				break;
			if (errno != EADDRINUSE)
				return -1;
		}
		if (i == range) {
			errno = EADDRINUSE;
			return -1;
		}
	}
	memcpy(s->path, path, sizeof(path));
	s->iface = iface;
	s->owner_pid = getpid();
	swrap_addr_set_port(&s->local, port);
	atomic_fetch_or(&s->flags, SWRAP_SOCK_BOUND | SWRAP_SOCK_OWNS_FILE);
	swrap_log(SWRAP_LOG_DEBUG, "fd %d bound to %s", fd, path);
	return 0;
}
