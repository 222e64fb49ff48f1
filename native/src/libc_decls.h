/*
 * libc_decls.h - declarations of everything in libc_syms.h, so that the
 * table of real functions is typed from libc's own prototypes.
 */
#ifndef SWRAP_LIBC_DECLS_H
#define SWRAP_LIBC_DECLS_H

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

/* Not in the headers any more (Sun RPC left glibc's), or internal names of
 * _FORTIFY_SOURCE and large-file builds. */
int bindresvport(int fd, struct sockaddr_in *sin);
int fcntl64(int fd, int cmd, ...);
int open64(const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);
int creat64(const char *path, mode_t mode);
FILE *fopen64(const char *path, const char *mode);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *addrlen);

#endif
