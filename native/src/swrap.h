/*
 * swrap.h - internal interfaces shared by the files of libsocket_wrapper.
 * Every symbol here is hidden; only the interposed libc functions and the
 * helper API carry SWRAP_EXPORT.
 */
#ifndef SWRAP_H
#define SWRAP_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "swrap_abi.h"
#include "swrap_fdpass.h"

#define SWRAP_EXPORT __attribute__((visibility("default")))

/* glibc declares the sockaddr arguments of bind, connect, accept... as
 * transparent unions under _GNU_SOURCE; our definitions must match, and
 * SWRAP_SA gives the plain pointer. */
#if defined(__USE_GNU) && !defined(__cplusplus)
#define SWRAP_SA(arg) ((arg).__sockaddr__)
#else
#define SWRAP_SA(arg) (arg)
#endif
#define SWRAP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SWRAP_LIKELY(x) __builtin_expect(!!(x), 1)
/* Keeps a socket's slow path out of the caller, so that the fast path for
 * fds we do not wrap needs no stack frame. */
#define SWRAP_NOINLINE __attribute__((noinline))

/* ---- libc.c: the real functions, found with dlsym(RTLD_NEXT). */
#include "libc_decls.h"

/* One pointer per function of libc_syms.h, typed like the function. */
struct swrap_libc_table {
#define SWRAP_LIBC_SYM(name) __typeof__(&name) name;
#include "libc_syms.h"
#undef SWRAP_LIBC_SYM
};
extern struct swrap_libc_table swrap_libc_fns;
/* Fill the table, all at once, on the first call through it (a process
 * that never calls a wrapped function pays no lookups at start), and never
 * later from odd places such as a sanitizer's own open(). */
void swrap_libc_resolve(void);
extern atomic_bool swrap_libc_ready;
/* Completes the table (once). */
__attribute__((cold, noinline)) void swrap_libc_init(void);

/* SWRAP_LIBC(name) is the next definition of `name` after ours (libc's, or
 * another preloaded wrapper's).  Once the table is complete: one load. */
#define SWRAP_LIBC(name)                                                       \
	(__extension__({                                                       \
		if (SWRAP_UNLIKELY(!atomic_load_explicit(&swrap_libc_ready,    \
							 memory_order_acquire)))  \
			swrap_libc_init();                                     \
		swrap_libc_fns.name;                                           \
	}))

/* return SWRAP_PASS(name, args...): hand the call to libc as a tail call,
 * so that the fast path of an interposed function needs no stack frame. */
#define SWRAP_PASS(name, ...)                                                  \
	(SWRAP_LIKELY(atomic_load_explicit(&swrap_libc_ready, memory_order_acquire)) \
		 ? swrap_libc_fns.name(__VA_ARGS__)                            \
		 : (swrap_libc_init(), swrap_libc_fns.name(__VA_ARGS__)))

/* ---- config.c: SOCKET_WRAPPER_* parsed into immutable snapshots. */
struct swrap_config {
	const char *key;        /* the raw SOCKET_WRAPPER_* entries it was made from */
	bool enabled;           /* SOCKET_WRAPPER_DIR is set */
	int error;              /* 0, or the errno inet calls fail with */
	char dir[SWRAP_SUN_PATH_SIZE];
	uint32_t ipv4_net;      /* SWRAP_NET_LOOPBACK or SWRAP_NET_TEN */
	unsigned default_iface;
	unsigned mtu;
	unsigned max_sockets;
	int debuglevel;
	char pcap_file[4096];   /* SOCKET_WRAPPER_PCAP_FILE, or "" */
};

/* Current configuration, re-read if the environment changed since last call.
 * Control path only (it scans environ). */
const struct swrap_config *swrap_config_current(void);
/* The snapshot from the last swrap_config_current(), without looking again. */
const struct swrap_config *swrap_config_last(void);
/* Snapshot usable for a new inet socket: NULL with errno set when the wrapper
 * is asked for but misconfigured; *inert = true when SOCKET_WRAPPER_DIR is unset. */
const struct swrap_config *swrap_config_for_socket(bool *inert);
void swrap_config_atfork_prepare(void);
void swrap_config_atfork_release(void);

/* ---- log.c */
enum { SWRAP_LOG_ERROR = 0, SWRAP_LOG_WARN = 1, SWRAP_LOG_DEBUG = 2, SWRAP_LOG_TRACE = 3 };
void swrap_log_at(int level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define swrap_log(level, ...) swrap_log_at((level), __func__, __VA_ARGS__)
/* One unconditional line on stderr ("socket_wrapper[pid]: ..."). */
void swrap_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- addr.c: emulated addresses and socket file names, pure functions. */
union swrap_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

enum swrap_addr_kind {
	SWRAP_ADDR_IFACE,     /* an emulated interface address */
	SWRAP_ADDR_ANY,       /* 0.0.0.0 or :: */
	SWRAP_ADDR_BROADCAST, /* 255.255.255.255 or the network's broadcast */
	SWRAP_ADDR_FOREIGN,   /* anything else: not on the emulated network */
};

/* Classify an address of `family` (AF_INET or AF_INET6); sets *iface for
 * SWRAP_ADDR_IFACE.  *mapped4 is set for ::ffff:a.b.c.d on AF_INET6. */
enum swrap_addr_kind swrap_addr_classify(uint32_t ipv4_net, const union swrap_sockaddr *a,
					 unsigned *iface, bool *mapped4);
/* The emulated address of iface:port in `family`. */
void swrap_addr_make(uint32_t ipv4_net, int family, unsigned iface, unsigned port,
		     union swrap_sockaddr *out);
/* ::ffff:a.b.c.d for IPv4 iface:port, as an IPv6 socket sees IPv4 peers. */
void swrap_addr_make_mapped(uint32_t ipv4_net, unsigned iface, unsigned port,
			    union swrap_sockaddr *out);
socklen_t swrap_addr_len(int family);
unsigned swrap_addr_port(const union swrap_sockaddr *a);
void swrap_addr_set_port(union swrap_sockaddr *a, unsigned port);
/* File type letter for an emulated family and socket type (T, U, X, Y). */
char swrap_type_char(int family, int socktype);
/* Family of a type letter, or 0 when it is none of T U X Y. */
int swrap_type_family(char type);
/* "%c%02X%04X"; out holds SWRAP_NAME_LEN + 1 bytes. */
void swrap_name_format(char *out, char type, unsigned iface, unsigned port);
/* Parse a socket file name (or a path ending in one); 0 on success, -1 otherwise. */
int swrap_name_parse(const char *path, char *type, unsigned *iface, unsigned *port);
/* dir + "/" + name into out (sizeof sun_path); -1 with ENAMETOOLONG if it does not fit. */
int swrap_path_format(char *out, const char *dir, char type, unsigned iface, unsigned port);
/* Copy an address to a caller's (addr, addrlen) pair the way the kernel does:
 * truncate to *addrlen, then report the full length. */
void swrap_addr_copy_out(const union swrap_sockaddr *a, socklen_t len, struct sockaddr *addr,
			 socklen_t *addrlen);

/* ---- table.c: fd -> emulated socket. */
/* Socket state; the bits that travel with a passed socket have the values of
 * swrap_fdpass.h. */
enum {
	SWRAP_SOCK_BOUND = SWRAP_FDPASS_BOUND,         /* has a local port and file */
	SWRAP_SOCK_LISTENING = SWRAP_FDPASS_LISTENING,
	SWRAP_SOCK_CONNECTED = SWRAP_FDPASS_CONNECTED, /* has a peer (TCP, or connected UDP) */
	SWRAP_SOCK_OWNS_FILE = 1u << 3,   /* unlink the file when the last fd closes */
	SWRAP_SOCK_WILDCARD = SWRAP_FDPASS_WILDCARD,   /* bound to 0.0.0.0 / :: */
	SWRAP_SOCK_DUAL = SWRAP_FDPASS_DUAL,           /* IPv6 wildcard that also has the IPv4 name */
	SWRAP_SOCK_DETACHED = SWRAP_FDPASS_DETACHED,   /* connected UDP, Unix socket not: send by name */
	SWRAP_SOCK_BCAST_PEER = SWRAP_FDPASS_BCAST_PEER, /* connected UDP to a broadcast address */
	SWRAP_SOCK_IN_PROGRESS = 1u << 8, /* connected, but the program was told EINPROGRESS */
	SWRAP_SOCK_REFUSED = 1u << 9,     /* a non-blocking connect was refused */
	SWRAP_SOCK_PASSED = 1u << 10,     /* sent to another process with SCM_RIGHTS */
	SWRAP_SOCK_PEER_GONE = 1u << 11,  /* TCP: a send found the peer closed */
	SWRAP_SOCK_SHUT_WR = 1u << 12,    /* TCP: shut down for writing by us */
	SWRAP_SOCK_IMPLICIT = 1u << 13,   /* bound by a connect or send, not by bind */
	SWRAP_SOCK_ADOPTED = 1u << 14,    /* inherited or received: others may hold it too */
};
#define SWRAP_SOCK_TRAVELS                                                     \
	(SWRAP_SOCK_BOUND | SWRAP_SOCK_LISTENING | SWRAP_SOCK_CONNECTED |      \
	 SWRAP_SOCK_WILDCARD | SWRAP_SOCK_DUAL | SWRAP_SOCK_DETACHED | SWRAP_SOCK_BCAST_PEER)

/* Emulated option values: {level, name, value}, name 0 = a free slot; the
 * layout that travels with a passed socket. */
#define SWRAP_SOCKOPT_SLOTS SWRAP_FDPASS_OPT_SLOTS
#define swrap_sockopt swrap_fdpass_opt

struct swrap_sock {
	atomic_int refs;         /* fds of this process that name this socket */
	atomic_uint flags;
	int16_t family;          /* the emulated family: AF_INET or AF_INET6 */
	int16_t name_family;     /* family of the file name: AF_INET for IPv4-mapped use */
	int16_t type;            /* SOCK_STREAM or SOCK_DGRAM */
	int16_t protocol;        /* IPPROTO_TCP or IPPROTO_UDP */
	int pending_error;       /* SO_ERROR of a non-blocking connect, until read */
	pid_t owner_pid;         /* the process that bound the file: only it unlinks */
	uint8_t iface;           /* interface of the file (the default one for wildcards) */
	uint8_t peer_iface;      /* interface of the peer's file */
	uint16_t port;           /* port of the file */
	const struct swrap_config *cfg; /* configuration the file was bound under */
	struct swrap_pcap *trace; /* where this socket's packets are recorded, or NULL */
	uint32_t my_seq;         /* trace: next sequence number we send */
	uint32_t peer_seq;       /* trace: next sequence number we expect */
	uint32_t ahead;          /* trace: bytes recorded but not yet taken by the kernel */
	atomic_uint trace_state; /* trace: SWRAP_TRACE_* */
	uint32_t fork_gen;       /* swrap_fork_gen when created: older ones may be shared */
	uint64_t ino;            /* st_ino of the Unix socket, once a control call saw it */
	atomic_uint sol_set;     /* SOL_SOCKET options set that accepted sockets inherit */
	atomic_uint wants;       /* SWRAP_WANT_*: receive-path options, for a quick look */
	union swrap_sockaddr local;
	union swrap_sockaddr peer;
	struct swrap_sockopt opts[SWRAP_SOCKOPT_SLOTS];
	struct swrap_sock *next_free;
};

#define SWRAP_FD_CHUNK_BITS 10
#define SWRAP_FD_CHUNK (1 << SWRAP_FD_CHUNK_BITS)
#define SWRAP_FD_LIMIT (1 << 24)

/* The lock-free index: chunks of SWRAP_FD_CHUNK entries, allocated on first
 * use.  Readers never lock; writers hold swrap_table_lock. */
extern _Atomic(struct swrap_sock *) *_Atomic swrap_fd_chunks[SWRAP_FD_LIMIT >> SWRAP_FD_CHUNK_BITS];

/* The socket behind fd, or NULL: one bounds check and two loads. */
static inline struct swrap_sock *swrap_table_get(int fd)
{
	if ((unsigned)fd >= SWRAP_FD_LIMIT)
		return NULL;
	_Atomic(struct swrap_sock *) *chunk = atomic_load_explicit(
		&swrap_fd_chunks[(unsigned)fd >> SWRAP_FD_CHUNK_BITS], memory_order_acquire);
	if (chunk == NULL)
		return NULL;
	return atomic_load_explicit(&chunk[(unsigned)fd & (SWRAP_FD_CHUNK - 1)],
				    memory_order_acquire);
}

/* For every call that hands out an fd number: metadata still held for that
 * number is stale (the fd was closed behind our back); drop it. */
void swrap_table_drop(int fd);
static inline int swrap_fresh_fd(int fd)
{
	if (SWRAP_UNLIKELY(swrap_table_get(fd) != NULL))
		swrap_table_drop(fd);
	return fd;
}

void swrap_table_lock(void);
void swrap_table_unlock(void);
/* A new socket with refs = 0; NULL with ENFILE beyond max_sockets, ENOMEM. */
struct swrap_sock *swrap_sock_new(unsigned max_sockets);
/* Give a never-installed socket back. */
void swrap_sock_discard(struct swrap_sock *s);
/* Make fd name s (refs + 1), dropping whatever stale socket fd named before. */
int swrap_table_install(int fd, struct swrap_sock *s);
/* Forget fd; when it was its socket's last fd here, release the socket and
 * remove its files if they are this process's to remove. */
void swrap_table_drop(int fd);
/* Forget fd; true when it was the socket's last fd here, with a copy of the
 * socket in *last (the object itself is released). */
bool swrap_table_detach(int fd, struct swrap_sock *last);
/* After the last fd of a socket is closed: its files and pass records. */
void swrap_sock_finished(const struct swrap_sock *last);
/* Incremented in the parent at each fork: sockets created before a fork may
 * live on in the child, so closing them here does not end them. */
extern atomic_uint swrap_fork_gen;
/* May another process still use s after we close it (so closing here does
 * not end the connection)? */
static inline bool swrap_sock_shared(const struct swrap_sock *s)
{
	return (atomic_load(&s->flags) & SWRAP_SOCK_PASSED) ||
	       s->fork_gen != atomic_load_explicit(&swrap_fork_gen, memory_order_relaxed);
}

/* ---- names.c: binding Unix sockets to names in the directory. */
/* Bind fd to iface:port (port 0: an ephemeral one) for socket s, under the
 * name family s->name_family, plus the IPv4 name if SWRAP_SOCK_DUAL is set;
 * fills s->iface, s->port, s->cfg and s->local's port.  -1 with errno. */
int swrap_bind_file(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
		    unsigned iface, unsigned port);
/* Bind to an ephemeral port by an abstract name (clients of our listeners). */
int swrap_bind_abstract(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
			unsigned iface);
/* Mark a listening socket's file as ours / ask whether a file is. */
void swrap_mark_ours(const struct swrap_sock *s);
bool swrap_listener_is_ours(const char *path, bool *exists);
/* Remove the names s holds (called when its last fd closes, by its binder). */
void swrap_unlink_files(const struct swrap_sock *s);
/* Path of the file of iface:port for a socket of s's type in name family fam. */
int swrap_sock_path(char *out, const struct swrap_sock *s, const struct swrap_config *cfg,
		    int fam, unsigned iface, unsigned port);
/* Is some live socket bound to path (per /proc/net/unix)?  With strict, only
 * a listener, an unconnected bound socket or a datagram socket counts, not
 * accepted connections that show their listener's path. */
bool swrap_path_is_held(const char *path, bool strict);

/* ---- socket.c */
/* Configuration for a call on an existing emulated socket: NULL with errno
 * set (the configuration's error, or ENETDOWN once SOCKET_WRAPPER_DIR is unset). */
const struct swrap_config *swrap_config_for_wrapped(void);
/* Check an address passed to bind/connect against the socket's family the way
 * the kernel does (EINVAL for a short length, EAFNOSUPPORT for a wrong family). */
int swrap_addr_in(const struct swrap_sock *s, const struct sockaddr *sa, socklen_t len,
		  union swrap_sockaddr *out);

/* ---- dgram.c: UDP over Unix datagram sockets. */
ssize_t swrap_dgram_sendmsg(int fd, struct swrap_sock *s, const struct msghdr *msg, int flags);
/* The result of a send on a connected UDP socket's Unix peer (n as returned). */
ssize_t swrap_dgram_connected_result(int fd, struct swrap_sock *s, ssize_t n, size_t len);
ssize_t swrap_dgram_recvmsg(int fd, struct swrap_sock *s, struct msghdr *msg, int flags);
/* recvfrom with the sender's emulated address (addr and addrlen not NULL). */
ssize_t swrap_dgram_recvfrom(int fd, struct swrap_sock *s, void *buf, size_t len, int flags,
			     struct sockaddr *addr, socklen_t *addrlen);
/* The emulated address of the sender behind a Unix address, as a socket of
 * `family` sees it; zeros with port 0 for an unnamed sender.  *bcast (if
 * not NULL) is 'L' or 'N' for a broadcast (limited / network), else 0. */
void swrap_peer_from_unix(const struct swrap_config *cfg, int family, const struct sockaddr_un *un,
			  socklen_t unlen, union swrap_sockaddr *out, char *bcast);
/* Bind an unbound socket to an ephemeral port on the default interface;
 * its address reads as 0.0.0.0:port if wildcard, else the concrete one;
 * abstract: by an abstract name instead of a file. */
int swrap_implicit_bind(int fd, struct swrap_sock *s, const struct swrap_config *cfg,
			bool wildcard, bool abstract);
/* Value of an emulated option, or the initial value; false if unknown. */
bool swrap_sockopt_on(struct swrap_sock *s, int level, int name);

/* ---- pcap.c: SOCKET_WRAPPER_PCAP_FILE (rules in swrap_pcap.h). */
enum { SWRAP_TRACE_FIN_SENT = 1, SWRAP_TRACE_EOF_SEEN = 2 };
struct swrap_pcap;
struct iovec;
/* Trace files' fds: the lowest (INT_MAX if none), and the call for when the
 * program closes or replaces fds lo..hi, which may include ours. */
extern atomic_int swrap_trace_fd_min;
void swrap_pcap_fd_gone(int lo, int hi);
static inline void swrap_pcap_check_gone(int lo, int hi)
{
	if (SWRAP_UNLIKELY(hi >= atomic_load_explicit(&swrap_trace_fd_min, memory_order_relaxed)))
		swrap_pcap_fd_gone(lo, hi);
}
/* The trace of this configuration, or NULL when none is asked for. */
struct swrap_pcap *swrap_pcap_for(const struct swrap_config *cfg);
/* A TCP connection is up: set the sequence numbers; the connecting side
 * records the handshake. */
void swrap_trace_tcp_established(struct swrap_sock *s, bool connecting);
void swrap_trace_tcp_refused(struct swrap_sock *s, const union swrap_sockaddr *dst);
/* Around a send of len bytes: record before, account after (n as returned). */
void swrap_trace_tcp_sending(struct swrap_sock *s, const struct iovec *iov, size_t iovcnt,
			     size_t len);
void swrap_trace_tcp_sent(struct swrap_sock *s, ssize_t n);
/* The peer answered our recorded handshake with a reset (it went away). */
void swrap_trace_tcp_peer_reset(struct swrap_sock *s);
/* n > 0 bytes read, or n == 0 for the end of stream. */
void swrap_trace_tcp_received(struct swrap_sock *s, size_t n);
void swrap_trace_tcp_closed(struct swrap_sock *s, int fd, bool reset);
void swrap_trace_udp_sent(struct swrap_sock *s, const union swrap_sockaddr *dst,
			  const struct iovec *iov, size_t iovcnt, size_t n, bool unreachable);

/* ---- fdpass.c: sockets passed with SCM_RIGHTS or inherited across exec. */
/* Before sendmsg: record the identity of every emulated socket in msg's
 * SCM_RIGHTS. */
void swrap_fdpass_outgoing(const struct msghdr *msg);
/* After recvmsg: adopt the sockets that arrived (and clean up after MSG_CTRUNC). */
void swrap_fdpass_incoming(const struct msghdr *msg);
/* An fd we know nothing about: if it is a Unix socket of our directory
 * (inherited, passed), rebuild its identity; NULL otherwise. */
struct swrap_sock *swrap_adopt(int fd);
/* For control calls: the socket behind fd, checked against the kernel (an
 * fd closed behind our back and reused by libc internally, by opendir or
 * mkstemp say, loses its stale identity here), adopting an inherited
 * socket when `adopt`. */
struct swrap_sock *swrap_sock_checked(int fd, bool adopt);
static inline struct swrap_sock *swrap_table_get_or_adopt(int fd)
{
	return swrap_sock_checked(fd, true);
}
/* s was passed and its last fd here is closed: remove its record if the
 * socket is gone everywhere. */
void swrap_fdpass_forget(const struct swrap_sock *s);

/* ---- timewait.c: client ports rest a moment after their connection closed. */
void swrap_timewait_mark(const struct swrap_config *cfg, char type, unsigned iface,
			 unsigned port);
bool swrap_timewait_held(const struct swrap_config *cfg, char type, unsigned iface,
			 unsigned port);

/* ---- sockopt.c */
enum { SWRAP_WANT_PKTINFO = 1, SWRAP_WANT_PKTINFO6 = 2 };
/* Recompute s->wants from the option slots (after they changed wholesale). */
void swrap_sockopt_refresh(struct swrap_sock *s);
/* Has the program set SO_REUSEADDR on s? */
bool swrap_sockopt_reuseaddr(const struct swrap_sock *s);
/* Give an accepted socket the SOL_SOCKET options its listener had set. */
void swrap_sockopt_inherit(int listener_fd, struct swrap_sock *listener, int fd);
int swrap_sockopt_get(struct swrap_sock *s, int level, int name, int *value);
#endif
