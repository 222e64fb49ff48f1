/*
 * io.c - the data path.  A stream socket's bytes go straight through its
 * Unix socket; calls that carry addresses are translated so that no Unix
 * path reaches the program; UDP sends without a connected Unix peer go by
 * name (dgram.c).  With a trace, what went through is recorded (pcap.c).
 * Every call on an fd we do not wrap costs one table lookup.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "swrap.h"

static size_t iov_len(const struct iovec *iov, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += iov[i].iov_len;
	return total;
}

/* Does a send on s need dgram.c (no connected Unix peer to write to)? */
static inline bool needs_dgram_path(const struct swrap_sock *s)
{
	if (s->type != SOCK_DGRAM)
		return false;
	unsigned f = atomic_load_explicit(&s->flags, memory_order_relaxed);
	return (f & (SWRAP_SOCK_CONNECTED | SWRAP_SOCK_DETACHED)) != SWRAP_SOCK_CONNECTED;
}

/* Sends straight through the Unix socket, recorded with a trace: TCP data
 * before the kernel takes it (see pcap.c), UDP after. */
static inline void sending(struct swrap_sock *s, const struct iovec *iov, size_t iovcnt)
{
	if (s->trace != NULL && s->type == SOCK_STREAM) {
		size_t len = 0;
		for (size_t i = 0; i < iovcnt; i++)
			len += iov[i].iov_len;
		swrap_trace_tcp_sending(s, iov, iovcnt, len);
	}
}

static ssize_t sent(struct swrap_sock *s, ssize_t n, const struct iovec *iov, size_t iovcnt)
{
	if (n <= 0 || s->trace == NULL)
		return n;
	if (s->type == SOCK_STREAM)
		swrap_trace_tcp_sent(s, n);
	else
		swrap_trace_udp_sent(s, &s->peer, iov, iovcnt, (size_t)n, false);
	return n;
}

static inline void sending_buf(struct swrap_sock *s, const void *buf, size_t len)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
	sending(s, &v, 1);
}

static ssize_t sent_buf(struct swrap_sock *s, ssize_t n, const void *buf)
{
	struct iovec v = {.iov_base = (void *)buf, .iov_len = n > 0 ? (size_t)n : 0};
	return sent(s, n, &v, 1);
}

/* Stream sends go to the Unix socket with MSG_NOSIGNAL: TCP's first send
 * after the peer closed still succeeds (the peer's RST answers it), where a
 * Unix socket fails at once; SIGPIPE then comes from here, when TCP would
 * raise it. */
static ssize_t broken_pipe(int flags)
{
	if (!(flags & MSG_NOSIGNAL))
		raise(SIGPIPE);
	errno = EPIPE;
	return -1;
}

static ssize_t stream_result(struct swrap_sock *s, ssize_t n, size_t len, int flags)
{
	if (n >= 0 || errno != EPIPE)
		return n;
	unsigned f = atomic_fetch_or(&s->flags, SWRAP_SOCK_PEER_GONE);
	if (!(f & (SWRAP_SOCK_PEER_GONE | SWRAP_SOCK_SHUT_WR)))
		return (ssize_t)len; /* taken, and lost with the connection */
	return broken_pipe(flags);
}

static ssize_t stream_send(int fd, struct swrap_sock *s, const void *buf, size_t len, int flags)
{
	if (!(atomic_load_explicit(&s->flags, memory_order_relaxed) & SWRAP_SOCK_CONNECTED))
		return broken_pipe(flags); /* TCP says EPIPE when not connected */
	sending_buf(s, buf, len);
	ssize_t n = SWRAP_LIBC(send)(fd, buf, len, flags | MSG_NOSIGNAL);
	return sent_buf(s, stream_result(s, n, len, flags), buf);
}

static ssize_t stream_sendmsg(int fd, struct swrap_sock *s, const struct msghdr *msg, int flags)
{
	if (!(atomic_load_explicit(&s->flags, memory_order_relaxed) & SWRAP_SOCK_CONNECTED))
		return broken_pipe(flags);
	struct msghdr plain = *msg;
	plain.msg_name = NULL; /* TCP ignores a destination */
	plain.msg_namelen = 0;
	sending(s, msg->msg_iov, msg->msg_iovlen);
	ssize_t n = SWRAP_LIBC(sendmsg)(fd, &plain, flags | MSG_NOSIGNAL);
	n = stream_result(s, n, iov_len(msg->msg_iov, msg->msg_iovlen), flags);
	return sent(s, n, msg->msg_iov, msg->msg_iovlen);
}

/* An error a UDP socket has pending (ICMP port unreachable on a connected
 * socket) is reported once, by the next call. */
static inline bool pending(struct swrap_sock *s)
{
	if (s->type != SOCK_DGRAM || s->pending_error == 0)
		return false;
	errno = s->pending_error;
	s->pending_error = 0;
	return true;
}

/* Can s be read from?  TCP: only once connected (ENOTCONN otherwise, where a
 * Unix socket says EINVAL); UDP: not while an error is pending. */
static inline bool unreadable(struct swrap_sock *s)
{
	if (s->type == SOCK_STREAM) {
		if (atomic_load_explicit(&s->flags, memory_order_relaxed) & SWRAP_SOCK_CONNECTED)
			return false;
		errno = ENOTCONN;
		return true;
	}
	return pending(s);
}

/* Record what a stream read took; n == 0 on a non-empty request is EOF. */
static ssize_t received(struct swrap_sock *s, ssize_t n, size_t asked, int flags)
{
	if (s->trace == NULL || s->type != SOCK_STREAM || n < 0 || (flags & MSG_PEEK))
		return n;
	if (n > 0 || asked > 0)
		swrap_trace_tcp_received(s, (size_t)n);
	return n;
}

static ssize_t dgram_send_buf(int fd, struct swrap_sock *s, const void *buf, size_t len,
			      int flags, const struct sockaddr *addr, socklen_t addrlen)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_name = (void *)addr, .msg_namelen = addrlen,
			     .msg_iov = &iov, .msg_iovlen = 1};
	return swrap_dgram_sendmsg(fd, s, &msg, flags);
}

/* ---- sending */

static SWRAP_NOINLINE ssize_t write_wrapped(int fd, struct swrap_sock *s, const void *buf, size_t len)
{
	if (s->type == SOCK_STREAM)
		return stream_send(fd, s, buf, len, 0);
	if (pending(s))
		return -1;
	if (!needs_dgram_path(s))
		return sent_buf(s, swrap_dgram_connected_result(fd, s, SWRAP_LIBC(write)(fd, buf, len),
							       len), buf);
	ssize_t n = dgram_send_buf(fd, s, buf, len, 0, NULL, 0);
	if (n < 0 && errno == ENOTSOCK) {
		/* Stale: the number now names a file or pipe, opened where we
		 * could not see it. */
		swrap_table_drop(fd);
		return SWRAP_LIBC(write)(fd, buf, len);
	}
	return n;
}

SWRAP_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (SWRAP_UNLIKELY(s != NULL))
		return write_wrapped(fd, s, buf, len);
	return SWRAP_PASS(write, fd, buf, len); /* not ours: as if we were not here */
}

static SWRAP_NOINLINE ssize_t send_wrapped(int fd, struct swrap_sock *s, const void *buf, size_t len, int flags)
{
	if (s->type == SOCK_STREAM)
		return stream_send(fd, s, buf, len, flags);
	if (pending(s))
		return -1;
	if (!needs_dgram_path(s))
		return sent_buf(s, swrap_dgram_connected_result(
					   fd, s, SWRAP_LIBC(send)(fd, buf, len, flags), len), buf);
	return dgram_send_buf(fd, s, buf, len, flags, NULL, 0);
}

SWRAP_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (SWRAP_UNLIKELY(s != NULL))
		return send_wrapped(fd, s, buf, len, flags);
	return SWRAP_PASS(send, fd, buf, len, flags); /* not ours: as if we were not here */
}

static SWRAP_NOINLINE ssize_t writev_wrapped(int fd, struct swrap_sock *s, const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0) {
		errno = EINVAL;
		return -1;
	}
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	if (s->type == SOCK_STREAM)
		return stream_sendmsg(fd, s, &msg, 0);
	if (pending(s))
		return -1;
	if (!needs_dgram_path(s))
		return sent(s, swrap_dgram_connected_result(fd, s, SWRAP_LIBC(writev)(fd, iov, iovcnt),
							   iov_len(iov, (size_t)iovcnt)),
			    iov, (size_t)iovcnt);
	ssize_t n = swrap_dgram_sendmsg(fd, s, &msg, 0);
	if (n < 0 && errno == ENOTSOCK) { /* stale, as in write() */
		swrap_table_drop(fd);
		return SWRAP_LIBC(writev)(fd, iov, iovcnt);
	}
	return n;
}

SWRAP_EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (SWRAP_UNLIKELY(s != NULL))
		return writev_wrapped(fd, s, iov, iovcnt);
	return SWRAP_PASS(writev, fd, iov, iovcnt); /* not ours: as if we were not here */
}

SWRAP_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
			    __CONST_SOCKADDR_ARG addr, socklen_t addrlen)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL)
		return SWRAP_LIBC(sendto)(fd, buf, len, flags, addr, addrlen);
	if (s->type == SOCK_STREAM)
		return stream_send(fd, s, buf, len, flags); /* TCP ignores the address */
	if (pending(s))
		return -1;
	if (SWRAP_SA(addr) == NULL && !needs_dgram_path(s))
		return sent_buf(s, swrap_dgram_connected_result(
					   fd, s, SWRAP_LIBC(send)(fd, buf, len, flags), len), buf);
	return dgram_send_buf(fd, s, buf, len, flags, SWRAP_SA(addr), addrlen);
}

SWRAP_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (msg != NULL && msg->msg_control != NULL && msg->msg_controllen > 0)
		swrap_fdpass_outgoing(msg); /* emulated sockets may travel in it */
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || msg == NULL)
		return SWRAP_LIBC(sendmsg)(fd, msg, flags);
	if (s->type == SOCK_STREAM)
		return stream_sendmsg(fd, s, msg, flags);
	if (pending(s))
		return -1;
	if (msg->msg_name == NULL && !needs_dgram_path(s))
		return sent(s,
			    swrap_dgram_connected_result(fd, s, SWRAP_LIBC(sendmsg)(fd, msg, flags),
							 iov_len(msg->msg_iov, msg->msg_iovlen)),
			    msg->msg_iov, msg->msg_iovlen);
	return swrap_dgram_sendmsg(fd, s, msg, flags);
}

SWRAP_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	if (swrap_table_get(fd) == NULL)
		return SWRAP_LIBC(sendmmsg)(fd, vec, vlen, flags);
	unsigned int i;
	for (i = 0; i < vlen; i++) {
		ssize_t n = sendmsg(fd, &vec[i].msg_hdr, flags);
		if (n < 0) {
			if (i == 0)
				return -1;
			break;
		}
		vec[i].msg_len = (unsigned int)n;
	}
	return (int)i;
}

/* ---- receiving */

static SWRAP_NOINLINE ssize_t read_wrapped(int fd, struct swrap_sock *s, void *buf, size_t len)
{
	if (unreadable(s))
		return -1;
	return received(s, SWRAP_LIBC(read)(fd, buf, len), len, 0);
}

SWRAP_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (SWRAP_UNLIKELY(s != NULL))
		return read_wrapped(fd, s, buf, len);
	return SWRAP_PASS(read, fd, buf, len); /* not ours: as if we were not here */
}

static SWRAP_NOINLINE ssize_t recv_wrapped(int fd, struct swrap_sock *s, void *buf, size_t len, int flags)
{
	if (unreadable(s))
		return -1;
	return received(s, SWRAP_LIBC(recv)(fd, buf, len, flags), len, flags);
}

SWRAP_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (SWRAP_UNLIKELY(s != NULL))
		return recv_wrapped(fd, s, buf, len, flags);
	return SWRAP_PASS(recv, fd, buf, len, flags); /* not ours: as if we were not here */
}

static SWRAP_NOINLINE ssize_t readv_wrapped(int fd, struct swrap_sock *s, const struct iovec *iov, int iovcnt)
{
	if (unreadable(s))
		return -1;
	ssize_t n = SWRAP_LIBC(readv)(fd, iov, iovcnt);
	return received(s, n, iovcnt > 0 ? iov_len(iov, (size_t)iovcnt) : 0, 0);
}

SWRAP_EXPORT ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (SWRAP_UNLIKELY(s != NULL))
		return readv_wrapped(fd, s, iov, iovcnt);
	return SWRAP_PASS(readv, fd, iov, iovcnt); /* not ours: as if we were not here */
}

/* Sockets that arrived with SCM_RIGHTS take up their identity. */
static ssize_t arrived(ssize_t n, struct msghdr *msg)
{
	if (n >= 0 && msg != NULL &&
	    ((msg->msg_control != NULL && msg->msg_controllen > 0) ||
	     (msg->msg_flags & MSG_CTRUNC)))
		swrap_fdpass_incoming(msg);
	return n;
}

SWRAP_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL || msg == NULL)
		return arrived(SWRAP_LIBC(recvmsg)(fd, msg, flags), msg);
	if (unreadable(s))
		return -1;
	if (s->type == SOCK_DGRAM)
		return arrived(swrap_dgram_recvmsg(fd, s, msg, flags), msg);
	void *name = msg->msg_name;
	msg->msg_name = NULL;
	ssize_t n = SWRAP_LIBC(recvmsg)(fd, msg, flags);
	int err = errno;
	msg->msg_name = name;
	msg->msg_namelen = 0; /* TCP reports no source address */
	errno = err;
	return arrived(received(s, n, iov_len(msg->msg_iov, msg->msg_iovlen), flags), msg);
}

SWRAP_EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG addr,
			      socklen_t *addrlen)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s == NULL)
		return SWRAP_LIBC(recvfrom)(fd, buf, len, flags, addr, addrlen);
	if (unreadable(s))
		return -1;
	if (s->type == SOCK_STREAM || SWRAP_SA(addr) == NULL || addrlen == NULL) {
		ssize_t n = SWRAP_LIBC(recv)(fd, buf, len, flags);
		if (n >= 0 && SWRAP_SA(addr) != NULL && addrlen != NULL)
			*addrlen = 0;
		return received(s, n, len, flags);
	}
	return swrap_dgram_recvfrom(fd, s, buf, len, flags, SWRAP_SA(addr), addrlen);
}

SWRAP_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
			  struct timespec *timeout)
{
	if (swrap_table_get(fd) == NULL)
		return SWRAP_LIBC(recvmmsg)(fd, vec, vlen, flags, timeout);
	/* MSG_WAITFORONE and MSG_DONTWAIT bound the wait; the timeout, which
	 * the kernel also checks only between datagrams, is not emulated. */
	int each = flags & ~MSG_WAITFORONE;
	unsigned int i;
	for (i = 0; i < vlen; i++) {
		ssize_t n = recvmsg(fd, &vec[i].msg_hdr, each);
		if (n < 0) {
			if (i == 0)
				return -1;
			break;
		}
		vec[i].msg_len = (unsigned int)n;
		if (flags & MSG_WAITFORONE)
			each |= MSG_DONTWAIT;
	}
	return (int)i;
}

/* ---- _FORTIFY_SOURCE entry points: the checked call, then ours. */

ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
SWRAP_EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen || swrap_table_get(fd) == NULL)
		return SWRAP_LIBC(__read_chk)(fd, buf, len, buflen);
	return read(fd, buf, len);
}

ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
SWRAP_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (len > buflen || swrap_table_get(fd) == NULL)
		return SWRAP_LIBC(__recv_chk)(fd, buf, len, buflen, flags);
	return recv(fd, buf, len, flags);
}

ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *addrlen);
SWRAP_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
				    struct sockaddr *addr, socklen_t *addrlen)
{
	if (len > buflen || swrap_table_get(fd) == NULL)
		return SWRAP_LIBC(__recvfrom_chk)(fd, buf, len, buflen, flags, addr, addrlen);
	return recvfrom(fd, buf, len, flags, addr, addrlen);
}

/* ---- end of stream */

SWRAP_EXPORT int shutdown(int fd, int how)
{
	struct swrap_sock *s = swrap_sock_checked(fd, false);
	/* The FIN is recorded first, like data, so the peer's view follows it. */
	if (s != NULL && s->type == SOCK_STREAM && (how == SHUT_WR || how == SHUT_RDWR) &&
	    (atomic_load(&s->flags) & SWRAP_SOCK_CONNECTED))
		swrap_trace_tcp_closed(s, fd, false);
	int ret = SWRAP_LIBC(shutdown)(fd, how);
	if (ret == 0 && s != NULL && (how == SHUT_WR || how == SHUT_RDWR))
		atomic_fetch_or(&s->flags, SWRAP_SOCK_SHUT_WR);
	return ret;
}
