/* fdlife.c - close and the dup family: which fd numbers name which socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "swrap.h"

SWRAP_EXPORT int close(int fd)
{
	if (swrap_table_get(fd) != NULL)
		swrap_table_drop(fd);
	return SWRAP_LIBC(close)(fd);
}

/* After libc made newfd a copy of oldfd: newfd names what oldfd names. */
static int after_dup(int oldfd, int newfd)
{
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
	if (nfd < 0 || swrap_table_get(fd) == NULL)
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
	if (ret >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && swrap_table_get(fd) != NULL)
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
