/* libc.c - finding the real libc functions behind the interposed ones. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swrap.h"

/* Written once, under pthread_once, before swrap_libc_ready is set. */
struct swrap_libc_table swrap_libc_fns;
static pthread_once_t libc_once = PTHREAD_ONCE_INIT;
atomic_bool swrap_libc_ready;

static void *lookup(const char *name)
{
	/*
	 * RTLD_NEXT finds the definition that follows ours in the lookup
	 * order: libc's, or that of another preloaded wrapper stacked after
	 * us.  Never RTLD_DEEPBIND, so SOCKET_WRAPPER_DISABLE_DEEPBIND has
	 * nothing to switch off.
	 */
	void *fn = dlsym(RTLD_NEXT, name);
	if (fn == NULL) {
		/* Without the real function there is nothing safe to do.  (stdio:
		 * our own write() would wait for this very lookup.) */
		fprintf(stderr, "socket_wrapper[%d]: cannot find libc's %s\n", (int)getpid(), name);
		abort();
	}
	return fn;
}

void swrap_libc_resolve(void)
{
#define SWRAP_LIBC_SYM(name) swrap_libc_fns.name = (__typeof__(&name))lookup(#name);
#include "libc_syms.h"
#undef SWRAP_LIBC_SYM
	atomic_store_explicit(&swrap_libc_ready, true, memory_order_release);
}

/* Called with every register preserved (see swrap.h): only the compiler's
 * own save and restore around the call below, on this cold path. */
void swrap_libc_init(void)
{
	pthread_once(&libc_once, swrap_libc_resolve);
}
