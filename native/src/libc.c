/* libc.c - finding the real libc functions behind the interposed ones. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swrap.h"

struct swrap_libc_table swrap_libc_fns;
pthread_once_t swrap_libc_once = PTHREAD_ONCE_INIT;

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
}
