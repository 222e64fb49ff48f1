/*
 * timewait.c - TIME_WAIT, roughly: a client port is not handed out again
 * for a moment after its connection closed.  Otherwise another process
 * could pick the same port at once and open a connection with the same
 * addresses (and the same initial sequence numbers in the trace) while the
 * server still holds the old one.  The marks live in a small file shared by
 * every process of the directory, mapped into memory; without it (no space,
 * a read-only directory) ports are simply picked without the check.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "swrap.h"

#define SLOTS 65536u
#define HOLD_SECONDS 2u
#define MAP_SIZE (SLOTS * sizeof(uint32_t))

/* The mapping of the directory last used; replaced (and the old one kept,
 * as threads may still read it) when SOCKET_WRAPPER_DIR changes. */
static pthread_mutex_t map_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(uint32_t *) map;
static char map_dir[SWRAP_SUN_PATH_SIZE];
static bool map_failed;

static _Atomic(uint32_t) *marks_for(const struct swrap_config *cfg)
{
	uint32_t *m = atomic_load_explicit(&map, memory_order_acquire);
	if (m != NULL && strcmp(map_dir, cfg->dir) == 0)
		return (_Atomic(uint32_t) *)m;
	pthread_mutex_lock(&map_mutex);
	if (map_failed && strcmp(map_dir, cfg->dir) == 0) {
		pthread_mutex_unlock(&map_mutex);
		return NULL;
	}
	char path[SWRAP_SUN_PATH_SIZE + 16];
	snprintf(path, sizeof(path), "%s/.timewait", cfg->dir);
	m = NULL;
	int fd = SWRAP_LIBC(open)(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    ((size_t)st.st_size >= MAP_SIZE || ftruncate(fd, MAP_SIZE) == 0)) {
		void *p = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		m = p == MAP_FAILED ? NULL : p;
	}
	if (fd >= 0)
		SWRAP_LIBC(close)(fd);
	strcpy(map_dir, cfg->dir);
	map_failed = m == NULL;
	if (m != NULL)
		atomic_store_explicit(&map, m, memory_order_release);
	pthread_mutex_unlock(&map_mutex);
	return (_Atomic(uint32_t) *)m;
}

static uint32_t now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec + 1; /* 0 marks an unused slot */
}

/* One slot per port number, whatever the interface and family: stricter
 * than TCP, and the range is large enough for it. */
static unsigned slot(char type, unsigned iface, unsigned port)
{
	(void)type;
	(void)iface;
	return port % SLOTS;
}

void swrap_timewait_mark(const struct swrap_config *cfg, char type, unsigned iface,
			 unsigned port)
{
	_Atomic(uint32_t) *m = marks_for(cfg);
	if (m != NULL)
		atomic_store_explicit(&m[slot(type, iface, port)], now_seconds(),
				      memory_order_relaxed);
}

bool swrap_timewait_held(const struct swrap_config *cfg, char type, unsigned iface,
			 unsigned port)
{
	_Atomic(uint32_t) *m = marks_for(cfg);
	if (m == NULL)
		return false;
	uint32_t when = atomic_load_explicit(&m[slot(type, iface, port)], memory_order_relaxed);
	return when != 0 && now_seconds() - when < HOLD_SECONDS;
}
