/*
 * socket_wrapper.h - helper API of libsocket_wrapper.so.
 *
 * Link with -lsocket_wrapper_noop (pkg-config socket_wrapper_noop): in a
 * program run without the preload both functions are harmless no-ops; under
 * LD_PRELOAD=libsocket_wrapper.so the preloaded library answers.
 */
#ifndef SOCKET_WRAPPER_H
#define SOCKET_WRAPPER_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when the preloaded wrapper is active: SOCKET_WRAPPER_DIR is set and
 * valid, so new IPv4/IPv6 sockets are emulated. */
bool socket_wrapper_enabled(void);

/* Tell the wrapper that fd is no longer an emulated inet socket (for example
 * after the program closed it behind the wrapper's back); forget what it knew. */
void socket_wrapper_indicate_no_inet_fd(int fd);

#ifdef __cplusplus
}
#endif

#endif
