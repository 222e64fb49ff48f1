/*
 * syscall.c - programs that bypass the libc wrappers (libuv, Go's cgo paths,
 * hand-written code) call syscall(SYS_socket, ...) and friends; route those
 * numbers through the same code as the libc entry points.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/close_range.h>
#include <unistd.h>

#include "swrap.h"

#define I(n) ((int)a[n])
#define P(n) ((void *)a[n])
#define L(n) ((socklen_t)a[n])

SWRAP_EXPORT long syscall(long number, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long); /* unused ones are whatever the registers hold */
	va_end(ap);

	switch (number) {
	case SYS_socket:
		return socket(I(0), I(1), I(2));
	case SYS_socketpair:
		return socketpair(I(0), I(1), I(2), P(3));
	case SYS_bind:
		return bind(I(0), (const struct sockaddr *)P(1), L(2));
	case SYS_listen:
		return listen(I(0), I(1));
	case SYS_connect:
		return connect(I(0), (const struct sockaddr *)P(1), L(2));
	case SYS_accept:
		return accept(I(0), (struct sockaddr *)P(1), P(2));
	case SYS_accept4:
		return accept4(I(0), (struct sockaddr *)P(1), P(2), I(3));
	case SYS_getsockname:
		return getsockname(I(0), (struct sockaddr *)P(1), P(2));
	case SYS_getpeername:
		return getpeername(I(0), (struct sockaddr *)P(1), P(2));
	case SYS_getsockopt:
		return getsockopt(I(0), I(1), I(2), P(3), P(4));
	case SYS_setsockopt:
		return setsockopt(I(0), I(1), I(2), P(3), L(4));
	case SYS_sendto:
		return sendto(I(0), P(1), (size_t)a[2], I(3), (const struct sockaddr *)P(4), L(5));
	case SYS_recvfrom:
		return recvfrom(I(0), P(1), (size_t)a[2], I(3), (struct sockaddr *)P(4), P(5));
	case SYS_sendmsg:
		return sendmsg(I(0), P(1), I(2));
	case SYS_recvmsg:
		return recvmsg(I(0), P(1), I(2));
	case SYS_sendmmsg:
		return sendmmsg(I(0), P(1), (unsigned)a[2], I(3));
	case SYS_recvmmsg:
		return recvmmsg(I(0), P(1), (unsigned)a[2], I(3), P(4));
	case SYS_write:
		return write(I(0), P(1), (size_t)a[2]);
	case SYS_writev:
		return writev(I(0), P(1), I(2));
	case SYS_close:
		return close(I(0));
	case SYS_dup:
		return dup(I(0));
#ifdef SYS_dup2
	case SYS_dup2:
		return dup2(I(0), I(1));
#endif
	case SYS_dup3:
		return dup3(I(0), I(1), I(2));
	case SYS_fcntl:
		return fcntl(I(0), I(1), P(2));
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], I(2));
	default:
		return SWRAP_LIBC(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}
