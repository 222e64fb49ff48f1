/*
 * swrap_abi.h - the emulated network's numbers, shared by the C interposer and
 * the cwrap_py package (which reads this file with cffi's cdef).
 *
 * Keep to what cdef parses: integer #defines and plain structs of fixed-width
 * types, no #include, no #if, no expressions.
 */

/* Interface ids: the last octet of 127.0.0.X / 10.53.57.X, the low byte of
 * fd00::5357:5fXX, and the two hex digits in a socket file name. */
#define SWRAP_IFACE_MIN 1
#define SWRAP_IFACE_MAX 254
#define SWRAP_IFACE_DEFAULT 1

/* SOCKET_WRAPPER_IPV4_NETWORK: the two networks, host byte order. */
#define SWRAP_NET_LOOPBACK 0x7F000000
#define SWRAP_NET_TEN 0x0A353900
/* Broadcast addresses of each network (host byte order). */
#define SWRAP_BCAST_LOOPBACK 0x7FFFFFFF
#define SWRAP_BCAST_TEN 0x0AFFFFFF

/* IPv6: fd00::5357:5fXX. Bytes 0..13 are the prefix below, byte 14 is
 * SWRAP_IPV6_BYTE14, byte 15 the interface id. */
#define SWRAP_IPV6_BYTE0 0xFD
#define SWRAP_IPV6_BYTE12 0x53
#define SWRAP_IPV6_BYTE13 0x57
#define SWRAP_IPV6_BYTE14 0x5F

/* Socket file name: printf("%c%02X%04X", type, iface, port). */
#define SWRAP_TYPE_TCP4 84
#define SWRAP_TYPE_UDP4 85
#define SWRAP_TYPE_TCP6 88
#define SWRAP_TYPE_UDP6 89
#define SWRAP_NAME_LEN 7

/* Longest directory that still leaves room for "/" + name + NUL in sun_path. */
#define SWRAP_SUN_PATH_SIZE 108
#define SWRAP_DIR_MAX_LEN 99

/* Ephemeral ports for implicit and port-0 binds (Linux's default range). */
#define SWRAP_EPHEMERAL_FIRST 32768
#define SWRAP_EPHEMERAL_LAST 60999

/* Limits of the other variables. */
#define SWRAP_MTU_MIN 512
#define SWRAP_MTU_MAX 32768
#define SWRAP_MTU_DEFAULT 1500
#define SWRAP_MAX_SOCKETS_MIN 1
#define SWRAP_MAX_SOCKETS_DEFAULT 65535
#define SWRAP_MAX_SOCKETS_LIMIT 256000
#define SWRAP_DEBUGLEVEL_MAX 3
