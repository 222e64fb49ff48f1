/*
 * table.c - fd -> emulated socket, and the sockets' lifetime.
 *
 * Lookups are lock-free (see swrap_table_get in swrap.h), and so are
 * changes of an entry (atomic exchange).  table_mutex guards the free list
 * of socket objects; it is held only for memory operations, never across a
 * system call.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swrap.h"

/* The fd index.  128 KiB of zero pages until used: a process that wraps no
 * socket touches none of it. */
_Atomic(struct swrap_sock *) *_Atomic swrap_fd_chunks[SWRAP_FD_LIMIT >> SWRAP_FD_CHUNK_BITS];

/* Guards the free list and the live count (entries of the index change by
 * atomic exchange); global because socket objects move between threads. */
static pthread_mutex_t table_mutex = PTHREAD_MUTEX_INITIALIZER;
/* Released socket objects for reuse.  Objects are never returned to malloc,
 * so a racing lock-free reader that still holds a pointer reads a valid
 * (perhaps recycled) object, never freed memory. */
static struct swrap_sock *free_list;
static unsigned live_sockets;

atomic_uint swrap_fork_gen;

#define SLAB 64

void swrap_table_lock(void)
{
	pthread_mutex_lock(&table_mutex);
}

void swrap_table_unlock(void)
{
	pthread_mutex_unlock(&table_mutex);
}

struct swrap_sock *swrap_sock_new(unsigned max_sockets)
{
	swrap_table_lock();
	if (live_sockets >= max_sockets) {
		swrap_table_unlock();
		errno = ENFILE;
		return NULL;
	}
	if (free_list == NULL) {
		struct swrap_sock *slab = calloc(SLAB, sizeof(*slab));
		if (slab == NULL) {
			swrap_table_unlock();
			errno = ENOMEM;
			return NULL;
		}
		for (int i = 0; i < SLAB; i++) {
			slab[i].next_free = free_list;
			free_list = &slab[i];
		}
	}
	struct swrap_sock *s = free_list;
	free_list = s->next_free;
	live_sockets++;
	swrap_table_unlock();

	memset(s, 0, sizeof(*s));
	s->fork_gen = atomic_load_explicit(&swrap_fork_gen, memory_order_relaxed);
	return s;
}

static void release_locked(struct swrap_sock *s)
{
	s->next_free = free_list;
	free_list = s;
	live_sockets--;
}

void swrap_sock_discard(struct swrap_sock *s)
{
	swrap_table_lock();
	release_locked(s);
	swrap_table_unlock();
}

/* The chunk holding fd's entry, allocated on first use (a lost race frees
 * its copy). */
static _Atomic(struct swrap_sock *) *chunk_for(int fd)
{
	_Atomic(struct swrap_sock *) *_Atomic *slot =
		&swrap_fd_chunks[(unsigned)fd >> SWRAP_FD_CHUNK_BITS];
	_Atomic(struct swrap_sock *) *chunk = atomic_load_explicit(slot, memory_order_acquire);
	if (chunk != NULL)
		return chunk;
	_Atomic(struct swrap_sock *) *fresh = calloc(SWRAP_FD_CHUNK, sizeof(*fresh));
	if (fresh == NULL)
		return NULL;
	if (atomic_compare_exchange_strong_explicit(slot, &chunk, fresh, memory_order_acq_rel,
						    memory_order_acquire))
		return fresh;
	free(fresh);
	return chunk;
}

/* Detach an entry from its socket; returns the socket if that was its last
 * fd, for the caller to finish.  Lock-free: entries change by exchange. */
static struct swrap_sock *detach(_Atomic(struct swrap_sock *) *entry)
{
	struct swrap_sock *old = atomic_exchange_explicit(entry, NULL, memory_order_acq_rel);
	if (old == NULL)
		return NULL;
	if (atomic_fetch_sub(&old->refs, 1) != 1)
		return NULL;
	return old;
}

/* Copy out and release the object of a socket whose last fd is gone. */
static void release(struct swrap_sock *s, struct swrap_sock *copy)
{
	*copy = *s;
	swrap_table_lock();
	release_locked(s);
	swrap_table_unlock();
}

void swrap_sock_finished(const struct swrap_sock *last)
{
	unsigned flags = atomic_load(&last->flags);
	if (last->type == SOCK_STREAM && (flags & SWRAP_SOCK_IMPLICIT) &&
	    (flags & SWRAP_SOCK_CONNECTED) && last->cfg != NULL && !swrap_sock_shared(last))
		swrap_timewait_mark(last->cfg, swrap_type_char(last->name_family, last->type),
				    last->iface, last->port);
	if (atomic_load(&last->flags) & SWRAP_SOCK_PASSED)
		swrap_fdpass_forget(last);
	if (!(atomic_load(&last->flags) & SWRAP_SOCK_OWNS_FILE) || last->owner_pid != getpid())
		return;
	if (swrap_sock_shared(last) || (atomic_load(&last->flags) & SWRAP_SOCK_ADOPTED)) {
		/* Another process may still hold it: the file stays while it is bound. */
		char path[SWRAP_SUN_PATH_SIZE];
		if (last->cfg == NULL ||
		    swrap_sock_path(path, last, last->cfg, last->name_family, last->iface,
				    last->port) != 0 ||
		    swrap_path_is_held(path, true))
			return;
	}
	swrap_unlink_files(last);
}

int swrap_table_install(int fd, struct swrap_sock *s)
{
	if ((unsigned)fd >= SWRAP_FD_LIMIT) {
		errno = EMFILE;
		return -1;
	}
	_Atomic(struct swrap_sock *) *chunk = chunk_for(fd);
	if (chunk == NULL) {
		errno = ENOMEM;
		return -1;
	}
	atomic_fetch_add(&s->refs, 1);
	struct swrap_sock *old = atomic_exchange_explicit(&chunk[fd & (SWRAP_FD_CHUNK - 1)], s,
							  memory_order_acq_rel);
	if (old != NULL && atomic_fetch_sub(&old->refs, 1) == 1) {
		/* A stale socket the number still named. */
		struct swrap_sock copy;
		release(old, &copy);
		swrap_sock_finished(&copy);
	}
	return 0;
}

bool swrap_table_detach(int fd, struct swrap_sock *last)
{
	if (swrap_table_get(fd) == NULL)
		return false;
	_Atomic(struct swrap_sock *) *chunk = atomic_load_explicit(
		&swrap_fd_chunks[(unsigned)fd >> SWRAP_FD_CHUNK_BITS], memory_order_acquire);
	struct swrap_sock *s = detach(&chunk[fd & (SWRAP_FD_CHUNK - 1)]);
	if (s == NULL)
		return false;
	release(s, last);
	return true;
}

void swrap_table_drop(int fd)
{
	struct swrap_sock last;
	if (swrap_table_detach(fd, &last))
		swrap_sock_finished(&last);
}


struct swrap_sock *swrap_sock_checked(int fd, bool adopt)
{
	struct swrap_sock *s = swrap_table_get(fd);
	if (s != NULL) {
		struct stat st;
		int saved = errno;
		if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    (s->ino != 0 && s->ino != (uint64_t)st.st_ino)) {
			swrap_log(SWRAP_LOG_DEBUG, "fd %d is no longer the socket we knew", fd);
			swrap_table_drop(fd);
			s = NULL;
		} else if (s->ino == 0) {
			s->ino = (uint64_t)st.st_ino; /* first sight: remember it */
		}
		errno = saved;
	}
	if (s == NULL && adopt)
		s = swrap_adopt(fd);
	return s;
}
