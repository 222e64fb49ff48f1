/* libc.c - finding the real libc functions behind the interposed ones. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "swrap.h"

/*
 * RTLD_NEXT finds the definition that follows ours in the lookup order: libc's,
 * or that of another preloaded wrapper stacked after us.  Never RTLD_DEEPBIND,
 * so SOCKET_WRAPPER_DISABLE_DEEPBIND has nothing to switch off.
 */
void *swrap_libc_lookup(_Atomic(void *) *slot, const char *name)
{
	void *fn = dlsym(RTLD_NEXT, name);
	if (fn == NULL) {
		/* Without the real function there is nothing safe to do. */
		static const char msg[] = "socket_wrapper: cannot find libc symbol ";
		ssize_t ignored = write(2, msg, sizeof(msg) - 1);
		ignored = write(2, name, strlen(name));
		ignored = write(2, "\n", 1);
		(void)ignored;
		abort();
	}
	atomic_store_explicit(slot, fn, memory_order_relaxed);
	return fn;
}
