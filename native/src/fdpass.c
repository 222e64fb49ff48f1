/*
 * fdpass.c - emulated sockets that move between processes: passed with
 * SCM_RIGHTS (their identity travels in a record, see swrap_fdpass.h) or
 * inherited across exec (their identity is rebuilt from the Unix socket's
 * own name in SOCKET_WRAPPER_DIR).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swrap.h"

#define RECORD_PREFIX ".fdpass-"

static int record_path(char *out, size_t size, const char *dir, uint64_t ino)
{
	int n = snprintf(out, size, "%s/" RECORD_PREFIX "%llu", dir, (unsigned long long)ino);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

static void encode(const struct swrap_sock *s, uint64_t ino, struct swrap_fdpass_record *r)
{
	memset(r, 0, sizeof(*r));
	r->magic = SWRAP_FDPASS_MAGIC;
	r->version = SWRAP_FDPASS_VERSION;
	r->size = sizeof(*r);
	r->inode = ino;
	r->family = s->family;
	r->name_family = s->name_family;
	r->type = s->type;
	r->protocol = s->protocol;
	r->flags = atomic_load(&s->flags) & SWRAP_SOCK_TRAVELS;
	r->pending_error = s->pending_error;
	r->port = s->port;
	r->iface = s->iface;
	r->peer_iface = s->peer_iface;
	r->my_seq = s->my_seq;
	r->peer_seq = s->peer_seq;
	r->trace_state = atomic_load(&s->trace_state);
	memcpy(r->local, &s->local, SWRAP_FDPASS_ADDR_SIZE);
	memcpy(r->peer, &s->peer, SWRAP_FDPASS_ADDR_SIZE);
	memcpy(r->opts, s->opts, sizeof(r->opts));
}

static bool decode(const struct swrap_fdpass_record *r, uint64_t ino, struct swrap_sock *s)
{
	if (r->magic != SWRAP_FDPASS_MAGIC || r->version != SWRAP_FDPASS_VERSION ||
	    r->size != sizeof(*r) || r->inode != ino ||
	    (r->family != AF_INET && r->family != AF_INET6) ||
	    (r->type != SOCK_STREAM && r->type != SOCK_DGRAM))
		return false;
	s->family = (int16_t)r->family;
	s->name_family = (int16_t)r->name_family;
	s->type = (int16_t)r->type;
	s->protocol = (int16_t)r->protocol;
	atomic_store(&s->flags, r->flags & SWRAP_SOCK_TRAVELS);
	s->pending_error = r->pending_error;
	s->port = r->port;
	s->iface = r->iface;
	s->peer_iface = r->peer_iface;
	s->my_seq = r->my_seq;
	s->peer_seq = r->peer_seq;
	atomic_store(&s->trace_state, r->trace_state);
	memcpy(&s->local, r->local, SWRAP_FDPASS_ADDR_SIZE);
	memcpy(&s->peer, r->peer, SWRAP_FDPASS_ADDR_SIZE);
	memcpy(s->opts, r->opts, sizeof(s->opts));
	swrap_sockopt_refresh(s);
	return true;
}

static void collect_garbage(const struct swrap_config *cfg);

/* ---- sending */

static void write_record(const struct swrap_config *cfg, int fd, struct swrap_sock *s)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return;
	struct swrap_fdpass_record r;
	encode(s, (uint64_t)st.st_ino, &r);
	char path[4200], tmp[4300];
	if (record_path(path, sizeof(path), cfg->dir, (uint64_t)st.st_ino) != 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	int out = SWRAP_LIBC(open)(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return;
	bool ok = SWRAP_LIBC(write)(out, &r, sizeof(r)) == (ssize_t)sizeof(r);
	SWRAP_LIBC(close)(out);
	/* rename: a receiver sees the whole record or none. */
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return;
	}
	s->ino = (uint64_t)st.st_ino;
	atomic_fetch_or(&s->flags, SWRAP_SOCK_PASSED);
	collect_garbage(cfg);
	swrap_log(SWRAP_LOG_DEBUG, "fd %d passed on, identity in %s", fd, path);
}

void swrap_fdpass_outgoing(const struct msghdr *msg)
{
	const struct swrap_config *cfg = NULL;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			struct swrap_sock *s = swrap_table_get(fd);
			if (s == NULL)
				continue;
			if (cfg == NULL && (cfg = s->cfg) == NULL &&
			    (cfg = swrap_config_for_wrapped()) == NULL)
				return;
			write_record(cfg, fd, s);
		}
	}
}

/* ---- liveness and clean-up */

/* Collect the inode column of /proc/net/unix; calls seen(ino, arg) for each
 * row; stops early when it returns true.  Returns false if unreadable. */
static bool each_unix_inode(bool (*seen)(uint64_t, void *), void *arg)
{
	FILE *f = fopen("/proc/net/unix", "re");
	if (f == NULL)
		return false;
	char line[512];
	if (fgets(line, sizeof(line), f) == NULL) { /* header */
		fclose(f);
		return false;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long ino;
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %llu", &ino) == 1 && seen(ino, arg))
			break;
		if (strchr(line, '\n') == NULL) { /* skip the rest of a long row */
			int ch;
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
		}
	}
	fclose(f);
	return true;
}

struct inode_query {
	uint64_t ino;
	bool found;
};

static bool match_inode(uint64_t ino, void *arg)
{
	struct inode_query *q = arg;
	if (ino == q->ino)
		q->found = true;
	return q->found;
}

/* Is a Unix socket with this inode alive (per /proc/net/unix)? */
static bool inode_is_live(uint64_t ino)
{
	struct inode_query q = {.ino = ino};
	if (!each_unix_inode(match_inode, &q))
		return true; /* cannot tell: keep the record */
	return q.found;
}

void swrap_fdpass_forget(const struct swrap_sock *s)
{
	char path[4200];
	if (s->cfg == NULL || s->ino == 0 || inode_is_live(s->ino) ||
	    record_path(path, sizeof(path), s->cfg->dir, s->ino) != 0)
		return;
	unlink(path);
}

struct inode_set {
	uint64_t *ino;
	size_t n, cap;
	bool short_of_memory;
};

static bool collect_inode(uint64_t ino, void *arg)
{
	struct inode_set *set = arg;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 256;
		uint64_t *grown = realloc(set->ino, cap * sizeof(*grown));
		if (grown == NULL) {
			set->short_of_memory = true; /* not the whole picture */
			return true;
		}
		set->ino = grown;
		set->cap = cap;
	}
	set->ino[set->n++] = ino;
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Remove every record whose socket no longer exists anywhere: after
 * MSG_CTRUNC (the kernel closed the fds that did not fit), and at each pass
 * (sockets that ended in a process without the wrapper). */
static void collect_garbage(const struct swrap_config *cfg)
{
	DIR *d = opendir(cfg->dir);
	if (d == NULL)
		return;
	struct inode_set live = {0};
	bool listed = false, complete = false;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, RECORD_PREFIX, sizeof(RECORD_PREFIX) - 1) != 0)
			continue;
		char *end;
		unsigned long long ino = strtoull(e->d_name + sizeof(RECORD_PREFIX) - 1, &end, 10);
		if (*end != '\0')
			continue; /* a record being written (".<pid>" suffix) */
		if (!listed) {
			listed = true;
			complete = each_unix_inode(collect_inode, &live) && !live.short_of_memory;
			if (live.n > 0)
				qsort(live.ino, live.n, sizeof(*live.ino), cmp_u64);
		}
		uint64_t key = ino;
		char path[4200];
		if (!complete || bsearch(&key, live.ino, live.n, sizeof(*live.ino), cmp_u64) != NULL ||
		    record_path(path, sizeof(path), cfg->dir, ino) != 0)
			continue;
		unlink(path);
	}
	closedir(d);
	free(live.ino);
}

/* ---- receiving and adopting */

static bool read_record(const struct swrap_config *cfg, uint64_t ino, struct swrap_sock *s)
{
	char path[4200];
	if (record_path(path, sizeof(path), cfg->dir, ino) != 0)
		return false;
	int in = SWRAP_LIBC(open)(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return false;
	struct swrap_fdpass_record r;
	bool ok = SWRAP_LIBC(read)(in, &r, sizeof(r)) == (ssize_t)sizeof(r);
	SWRAP_LIBC(close)(in);
	if (!ok || !decode(&r, ino, s)) {
		/* It was addressed to this socket and nobody else will read it. */
		swrap_log(SWRAP_LOG_WARN, "%s: not a record of this version; ignored", path);
		unlink(path);
		return false;
	}
	unlink(path); /* taken; a later pass writes a new one */
	return true;
}

/* The Unix name of fd (or its peer) without the abstract namespace's NUL:
 * 0 for a file, 1 for an abstract name, -1 for none. */
static int unix_name(int fd, bool peer, char *path)
{
	struct sockaddr_un un;
	socklen_t len = sizeof(un);
	memset(&un, 0, sizeof(un));
	int ret = peer ? SWRAP_LIBC(getpeername)(fd, (struct sockaddr *)&un, &len)
		       : SWRAP_LIBC(getsockname)(fd, (struct sockaddr *)&un, &len);
	size_t n = len > offsetof(struct sockaddr_un, sun_path)
			   ? len - offsetof(struct sockaddr_un, sun_path)
			   : 0;
	if (ret != 0 || n == 0)
		return -1;
	const char *name = un.sun_path;
	bool abstract = name[0] == '\0'; /* a client of ours */
	if (abstract) {
		name++;
		n--;
	}
	if (n > sizeof(un.sun_path))
		n = sizeof(un.sun_path);
	memcpy(path, name, n);
	path[n] = '\0';
	if (path[0] == '\0')
		return -1;
	return abstract ? 1 : 0;
}

/* Is path a socket name directly in our directory? */
static bool in_our_dir(const struct swrap_config *cfg, const char *path, char *type,
		       unsigned *iface, unsigned *port)
{
	size_t dir_len = strlen(cfg->dir);
	return strncmp(path, cfg->dir, dir_len) == 0 && path[dir_len] == '/' &&
	       strchr(path + dir_len + 1, '/') == NULL &&
	       swrap_name_parse(path, type, iface, port) == 0;
}

static int sockopt_int(int fd, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);
	if (SWRAP_LIBC(getsockopt)(fd, SOL_SOCKET, name, &v, &len) != 0)
		return -1;
	return v;
}

/* Rebuild the identity from the socket's own names (an inherited fd). */
static bool from_names(const struct swrap_config *cfg, int fd, struct swrap_sock *s)
{
	char path[SWRAP_SUN_PATH_SIZE + 1];
	char type;
	unsigned iface, port;
	if (unix_name(fd, false, path) < 0 || !in_our_dir(cfg, path, &type, &iface, &port))
		return false;
	int socktype = sockopt_int(fd, SO_TYPE);
	if (socktype != SOCK_STREAM && socktype != SOCK_DGRAM)
		return false;
	s->family = (int16_t)swrap_type_family(type);
	s->name_family = s->family;
	s->type = (int16_t)socktype;
	s->protocol = socktype == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
	s->iface = (uint8_t)iface;
	s->port = (uint16_t)port;
	swrap_addr_make(cfg->ipv4_net, s->family, iface, port, &s->local);
	unsigned flags = SWRAP_SOCK_BOUND;
	if (sockopt_int(fd, SO_ACCEPTCONN) == 1)
		flags |= SWRAP_SOCK_LISTENING;
	char peer[SWRAP_SUN_PATH_SIZE + 1];
	char ptype;
	unsigned piface, pport;
	if (unix_name(fd, true, peer) >= 0 && in_our_dir(cfg, peer, &ptype, &piface, &pport)) {
		swrap_addr_make(cfg->ipv4_net, s->family, piface, pport, &s->peer);
		s->peer_iface = (uint8_t)piface;
		flags |= SWRAP_SOCK_CONNECTED;
	} else {
		s->peer.sa.sa_family = (sa_family_t)s->family;
		struct sockaddr_un un;
		socklen_t len = sizeof(un);
		if (SWRAP_LIBC(getpeername)(fd, (struct sockaddr *)&un, &len) == 0)
			flags |= SWRAP_SOCK_CONNECTED; /* to a peer with no name of ours */
	}
	atomic_store(&s->flags, flags);
	return true;
}

static struct swrap_sock *adopt_with(const struct swrap_config *cfg, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || sockopt_int(fd, SO_DOMAIN) != AF_UNIX)
		return NULL;
	struct swrap_sock *s = swrap_sock_new(cfg->max_sockets);
	if (s == NULL)
		return NULL;
	bool known = read_record(cfg, (uint64_t)st.st_ino, s) || from_names(cfg, fd, s);
	if (!known) {
		swrap_sock_discard(s);
		return NULL;
	}
	s->cfg = cfg;
	s->trace = swrap_pcap_for(cfg);
	char own[SWRAP_SUN_PATH_SIZE + 1];
	if (unix_name(fd, false, own) == 0) {
		/* Bound to a file: whoever closes the socket last removes it
		 * (checked then against /proc/net/unix). */
		s->owner_pid = getpid();
		atomic_fetch_or(&s->flags, SWRAP_SOCK_OWNS_FILE | SWRAP_SOCK_ADOPTED);
	}
	if ((atomic_load(&s->flags) & SWRAP_SOCK_CONNECTED) && s->type == SOCK_STREAM &&
	    s->my_seq == 0 && s->peer_seq == 0)
		swrap_trace_tcp_established(s, false); /* no record: sequence from the start */
	if (swrap_table_install(fd, s) != 0) {
		swrap_sock_discard(s);
		return NULL;
	}
	swrap_log(SWRAP_LOG_DEBUG, "fd %d adopted as an emulated socket", fd);
	return s;
}

struct swrap_sock *swrap_adopt(int fd)
{
	const struct swrap_config *cfg = swrap_config_current();
	if (!cfg->enabled || cfg->error != 0 || fd < 0)
		return NULL;
	int saved = errno;
	struct swrap_sock *s = adopt_with(cfg, fd);
	errno = saved;
	return s;
}

void swrap_fdpass_incoming(const struct msghdr *msg)
{
	const struct swrap_config *cfg = NULL;
	int saved = errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		if (cfg == NULL) {
			cfg = swrap_config_current();
			if (!cfg->enabled || cfg->error != 0)
				cfg = NULL;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			swrap_fresh_fd(fd);
			if (cfg != NULL)
				adopt_with(cfg, fd);
		}
	}
	if (msg->msg_flags & MSG_CTRUNC) {
		if (cfg == NULL) {
			cfg = swrap_config_current();
			if (!cfg->enabled || cfg->error != 0)
				cfg = NULL;
		}
		if (cfg != NULL)
			collect_garbage(cfg);
	}
	errno = saved;
}
