/* noop.c - libsocket_wrapper_noop.so: the helper API for programs that run
 * without the preload.  Under LD_PRELOAD the real library's definitions win. */
#include "socket_wrapper.h"

__attribute__((visibility("default"))) bool socket_wrapper_enabled(void)
{
	return false;
}

__attribute__((visibility("default"))) void socket_wrapper_indicate_no_inet_fd(int fd)
{
	(void)fd;
}
