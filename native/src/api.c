/* api.c - the public helper API and process-wide setup (fork handlers). */
#include <pthread.h>

#include "socket_wrapper.h"
#include "swrap.h"

SWRAP_EXPORT bool socket_wrapper_enabled(void)
{
	const struct swrap_config *cfg = swrap_config_current();
	return cfg->enabled && cfg->error == 0;
}

SWRAP_EXPORT void socket_wrapper_indicate_no_inet_fd(int fd)
{
	swrap_table_drop(fd);
}

/* A fork while another thread holds a lock would leave the child's copy
 * locked forever: take them all around fork, config before table (the order
 * every other path uses). */
static void atfork_prepare(void)
{
	swrap_config_atfork_prepare();
	swrap_table_lock();
}

static void atfork_child(void)
{
	swrap_table_unlock();
	swrap_config_atfork_release();
}

static void atfork_parent(void)
{
	/* The sockets that exist now are shared with the child. */
	atomic_fetch_add(&swrap_fork_gen, 1);
	atfork_child();
}

__attribute__((constructor)) static void swrap_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
