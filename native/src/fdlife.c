/* fdlife.c - close and the dup family: which fd numbers name which socket. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "swrap.h"

/* The last close of a traced TCP connection: FIN, or RST when received data
 * is left unread, as the kernel does. */
static void trace_last_close(int fd, struct swrap_sock *s)
{
	if (s->trace == NULL || s->type != SOCK_STREAM || atomic_load(&s->refs) != 1 ||
	    !(atomic_load(&s->flags) & SWRAP_SOCK_CONNECTED) || swrap_sock_shared(s))
		return; /* not the end of the connection, or maybe not (passed, forked) */
	int unread = 0;
	if (ioctl(fd, FIONREAD, &unread) != 0)
		unread = 0;
	swrap_trace_tcp_closed(s, fd, unread > 0);
}

SWRAP_EXPORT int close(int fd)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL) {
		swrap_pcap_check_gone(fd, fd);
		return SWRAP_LIBC(close)(fd);
	}
	trace_last_close(fd, s);
	struct swrap_sock last;
	bool was_last = swrap_table_detach(fd, &last);
	int ret = SWRAP_LIBC(close)(fd);
	int err = errno;
	if (was_last) /* after the close: files of shared sockets go if nobody holds them */
		swrap_sock_finished(&last);
	errno = err;
	return ret;
}

/* After libc made newfd a copy of oldfd: newfd names what oldfd names. */
static int after_dup(int oldfd, int newfd)
{
	swrap_pcap_check_gone(newfd, newfd);
	struct swrap_sock *s = swrap_table_get(oldfd);
	if (s == NULL) {
		swrap_table_drop(newfd); /* it may have named a socket before */
		return newfd;
	}
	if (swrap_table_install(newfd, s) != 0) {
		int err = errno;
		SWRAP_LIBC(close)(newfd);
		errno = err;
		return -1;
	}
	return newfd;
}

SWRAP_EXPORT int dup(int fd)
{
	int nfd = SWRAP_LIBC(dup)(fd);
	if (nfd < 0)
		return nfd;
	return after_dup(fd, nfd);
}

SWRAP_EXPORT int dup2(int oldfd, int newfd)
{
	int ret = SWRAP_LIBC(dup2)(oldfd, newfd);
	if (ret < 0 || oldfd == newfd)
		return ret;
	return after_dup(oldfd, ret);
}

SWRAP_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	int ret = SWRAP_LIBC(dup3)(oldfd, newfd, flags);
	if (ret < 0)
		return ret;
	return after_dup(oldfd, ret);
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	int ret = real(fd, cmd, arg);
	if (ret >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		return after_dup(fd, ret);
	return ret;
}

/* The third argument is an int or a pointer depending on cmd; passing it on
 * as a pointer preserves either in the calling conventions Linux uses. */
SWRAP_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(SWRAP_LIBC(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);
SWRAP_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(SWRAP_LIBC(fcntl64), fd, cmd, arg);
}

/* Forget every fd in [first, last] that we hold metadata for. */
static void drop_range(unsigned first, unsigned last)
{
	if (last >= SWRAP_FD_LIMIT)
		last = SWRAP_FD_LIMIT - 1;
	for (unsigned fd = first; fd <= last && fd >= first; fd++) {
		if ((fd & (SWRAP_FD_CHUNK - 1)) == 0 &&
		    atomic_load(&swrap_fd_chunks[fd >> SWRAP_FD_CHUNK_BITS]) == NULL) {
			fd += SWRAP_FD_CHUNK - 1; /* a chunk never used */
			continue;
		}
		if (swrap_table_get((int)fd) != NULL)
			swrap_table_drop((int)fd);
	}
}

SWRAP_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	int ret = SWRAP_LIBC(close_range)(first, last, flags);
	if (ret == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
		drop_range(first, last);
		swrap_pcap_check_gone((int)(first > INT_MAX ? INT_MAX : first),
				      (int)(last > INT_MAX ? INT_MAX : last));
	}
	return ret;
}

SWRAP_EXPORT void closefrom(int lowfd)
{
	SWRAP_LIBC(closefrom)(lowfd);
	drop_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u);
	swrap_pcap_check_gone(lowfd < 0 ? 0 : lowfd, INT_MAX);
}
