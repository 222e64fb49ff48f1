/*
 * io.c - the data path.  Stream data goes straight through the Unix socket
 * (read, write, send and recv need no help and are not interposed); only
 * calls that carry addresses are, so that no Unix path reaches the program.
 */
#include <errno.h>
#include <string.h>

#include "swrap.h"

SWRAP_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
			    __CONST_SOCKADDR_ARG addr, socklen_t addrlen)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || s->type != SOCK_STREAM)
		return SWRAP_LIBC(sendto)(fd, buf, len, flags, addr, addrlen);
	/* Like TCP: the destination of a stream socket is its peer. */
	return SWRAP_LIBC(send)(fd, buf, len, flags);
}

SWRAP_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG addr,
			      socklen_t *addrlen)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || s->type != SOCK_STREAM)
		return SWRAP_LIBC(recvfrom)(fd, buf, len, flags, addr, addrlen);
	ssize_t n = SWRAP_LIBC(recv)(fd, buf, len, flags);
	if (n >= 0 && SWRAP_SA(addr) != NULL && addrlen != NULL)
		*addrlen = 0; /* TCP reports no source address */
	return n;
}

SWRAP_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || s->type != SOCK_STREAM || msg == NULL || msg->msg_name == NULL)
		return SWRAP_LIBC(sendmsg)(fd, msg, flags);
	struct msghdr plain = *msg;
	plain.msg_name = NULL;
	plain.msg_namelen = 0;
	return SWRAP_LIBC(sendmsg)(fd, &plain, flags);
}

SWRAP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || s->type != SOCK_STREAM || msg == NULL)
		return SWRAP_LIBC(recvmsg)(fd, msg, flags);
	void *name = msg->msg_name;
	msg->msg_name = NULL;
	ssize_t n = SWRAP_LIBC(recvmsg)(fd, msg, flags);
	int err = errno;
	msg->msg_name = name;
	msg->msg_namelen = 0;
	errno = err;
	return n;
}

/* _FORTIFY_SOURCE builds call this instead of recvfrom. */
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *addrlen);
SWRAP_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
				    struct sockaddr *addr, socklen_t *addrlen)
{
	if (len > buflen)
		return SWRAP_LIBC(__recvfrom_chk)(fd, buf, len, buflen, flags, addr, addrlen);
	return recvfrom(fd, buf, len, flags, addr, addrlen);
}
