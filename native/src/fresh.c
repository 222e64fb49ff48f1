/*
 * fresh.c - every other call that hands out fd numbers.  An fd we held
 * metadata for may have been closed where we could not see it (libc's
 * internal close, a close_range, an fd closed in a vfork child...); when its
 * number comes back from any of these, the stale identity is dropped first,
 * so a file, pipe or eventfd never answers as an emulated socket.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "swrap.h"

/* open's mode argument exists only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, mode)                                                  \
	do {                                                                   \
		if ((flags) & (O_CREAT | __O_TMPFILE)) {                       \
			va_list ap_;                                           \
			va_start(ap_, flags);                                  \
			mode = (mode_t)va_arg(ap_, int);                       \
			va_end(ap_);                                           \
		}                                                              \
	} while (0)

SWRAP_EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return swrap_fresh_fd(SWRAP_LIBC(open)(path, flags, mode));
}

int open64(const char *path, int flags, ...);
SWRAP_EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return swrap_fresh_fd(SWRAP_LIBC(open64)(path, flags, mode));
}

SWRAP_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return swrap_fresh_fd(SWRAP_LIBC(openat)(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...);
SWRAP_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return swrap_fresh_fd(SWRAP_LIBC(openat64)(dirfd, path, flags, mode));
}

SWRAP_EXPORT int creat(const char *path, mode_t mode)
{
	return swrap_fresh_fd(SWRAP_LIBC(creat)(path, mode));
}

static FILE *fresh_file(FILE *f)
{
	if (f != NULL)
		swrap_fresh_fd(fileno(f));
	return f;
}

SWRAP_EXPORT FILE *fopen(const char *path, const char *mode)
{
	return fresh_file(SWRAP_LIBC(fopen)(path, mode));
}

FILE *fopen64(const char *path, const char *mode);
SWRAP_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return fresh_file(SWRAP_LIBC(fopen64)(path, mode));
}

SWRAP_EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	return fresh_file(SWRAP_LIBC(freopen)(path, mode, stream));
}

static int fresh_pair(int ret, const int fds[2])
{
	if (ret == 0) {
		swrap_fresh_fd(fds[0]);
		swrap_fresh_fd(fds[1]);
	}
	return ret;
}

SWRAP_EXPORT int pipe(int fds[2])
{
	return fresh_pair(SWRAP_LIBC(pipe)(fds), fds);
}

SWRAP_EXPORT int pipe2(int fds[2], int flags)
{
	return fresh_pair(SWRAP_LIBC(pipe2)(fds, flags), fds);
}

SWRAP_EXPORT int socketpair(int domain, int type, int protocol, int fds[2])
{
	return fresh_pair(SWRAP_LIBC(socketpair)(domain, type, protocol, fds), fds);
}

SWRAP_EXPORT int eventfd(unsigned int initval, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(eventfd)(initval, flags));
}

SWRAP_EXPORT int timerfd_create(int clockid, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(timerfd_create)(clockid, flags));
}

SWRAP_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(signalfd)(fd, mask, flags));
}

SWRAP_EXPORT int epoll_create(int size)
{
	return swrap_fresh_fd(SWRAP_LIBC(epoll_create)(size));
}

SWRAP_EXPORT int epoll_create1(int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(epoll_create1)(flags));
}

SWRAP_EXPORT int memfd_create(const char *name, unsigned int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(memfd_create)(name, flags));
}

SWRAP_EXPORT int inotify_init(void)
{
	return swrap_fresh_fd(SWRAP_LIBC(inotify_init)());
}

SWRAP_EXPORT int inotify_init1(int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(inotify_init1)(flags));
}

/* _FORTIFY_SOURCE's open: the mode-less form, checked by libc. */
int __open_2(const char *path, int flags);
SWRAP_EXPORT int __open_2(const char *path, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(__open_2)(path, flags));
}

int __open64_2(const char *path, int flags);
SWRAP_EXPORT int __open64_2(const char *path, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(__open64_2)(path, flags));
}

int __openat_2(int dirfd, const char *path, int flags);
SWRAP_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(__openat_2)(dirfd, path, flags));
}

int __openat64_2(int dirfd, const char *path, int flags);
SWRAP_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(__openat64_2)(dirfd, path, flags));
}

int creat64(const char *path, mode_t mode);
SWRAP_EXPORT int creat64(const char *path, mode_t mode)
{
	return swrap_fresh_fd(SWRAP_LIBC(creat64)(path, mode));
}

SWRAP_EXPORT int mkstemp(char *template)
{
	return swrap_fresh_fd(SWRAP_LIBC(mkstemp)(template));
}

SWRAP_EXPORT int mkostemp(char *template, int flags)
{
	return swrap_fresh_fd(SWRAP_LIBC(mkostemp)(template, flags));
}

SWRAP_EXPORT FILE *tmpfile(void)
{
	return fresh_file(SWRAP_LIBC(tmpfile)());
}

SWRAP_EXPORT FILE *popen(const char *command, const char *type)
{
	return fresh_file(SWRAP_LIBC(popen)(command, type));
}

SWRAP_EXPORT DIR *opendir(const char *name)
{
	DIR *d = SWRAP_LIBC(opendir)(name);
	if (d != NULL)
		swrap_fresh_fd(dirfd(d));
	return d;
}
