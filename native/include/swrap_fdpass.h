/*
 * swrap_fdpass.h - how an emulated socket's identity travels with it when
 * it is passed to another process with SCM_RIGHTS.  Shared by the C library
 * and cwrap_py.fdpass (read with cffi's cdef: integer #defines and plain
 * fixed-width structs only).
 *
 * The sending process writes one record per passed socket to the file
 * SOCKET_WRAPPER_DIR/.fdpass-<inode>, where <inode> is the decimal st_ino of
 * the socket (the same in every process that holds it).  A wrapped receiver
 * reads and removes it when the fd arrives; the data the program sends and
 * receives is never touched, so an unwrapped receiver sees only a working
 * Unix socket.  Records whose socket no longer exists anywhere are removed
 * by the next process that notices (the sender when it closes the socket,
 * a receiver after MSG_CTRUNC).
 *
 * A record with another magic, version or size is ignored (the receiver
 * then rebuilds what it can from the socket's file name).
 */

#define SWRAP_FDPASS_MAGIC 0x44465753
#define SWRAP_FDPASS_VERSION 1
#define SWRAP_FDPASS_OPT_SLOTS 10
#define SWRAP_FDPASS_ADDR_SIZE 28

/* flags */
#define SWRAP_FDPASS_BOUND 1
#define SWRAP_FDPASS_LISTENING 2
#define SWRAP_FDPASS_CONNECTED 4
#define SWRAP_FDPASS_WILDCARD 16
#define SWRAP_FDPASS_DUAL 32
#define SWRAP_FDPASS_DETACHED 64
#define SWRAP_FDPASS_BCAST_PEER 128

/* An emulated socket option; name 0 marks an unused slot. */
struct swrap_fdpass_opt {
	int16_t level;
	int16_t name;
	int32_t value;
};

struct swrap_fdpass_record {
	uint32_t magic;
	uint16_t version;
	uint16_t size;
	uint64_t inode;
	int32_t family;
	int32_t name_family;
	int32_t type;
	int32_t protocol;
	uint32_t flags;
	int32_t pending_error;
	uint16_t port;
	uint8_t iface;
	uint8_t peer_iface;
	uint32_t my_seq;
	uint32_t peer_seq;
	uint32_t trace_state;
	uint8_t local[28];
	uint8_t peer[28];
	struct swrap_fdpass_opt opts[10];
};
