/*
 * swrap_pcap.h - the trace format written by libsocket_wrapper and by
 * cwrap_py.pcap (which reads this file with cffi's cdef).  Keep to integer
 * #defines and plain fixed-width structs.
 *
 * File: classic pcap, microsecond timestamps, link type raw IP (IPv4 and
 * IPv6 packets in one file, no invented MAC addresses).
 *
 * Packets (emulated addresses; a v4-mapped IPv6 socket talks IPv4):
 *  IPv4 header: 0x45, TOS = the socket's IP_TOS, total length, id 0,
 *    DF (0x4000) for TCP and UDP, 0 for ICMP; TTL = the socket's IP_TTL (64);
 *    header checksum.
 *  IPv6 header: version 6, traffic class = IPV6_TCLASS, flow label 0,
 *    hop limit = IPV6_UNICAST_HOPS (64).
 *  TCP: 20-byte header, no options, window SWRAP_PCAP_TCP_WINDOW, checksum.
 *    Payload per segment at most MTU - 40 (IPv4) or MTU - 60 (IPv6).
 *    Initial sequence numbers: FNV-1a (32 bit) over src address bytes, src
 *    port (2 bytes, big endian), dst address bytes, dst port (big endian).
 *  UDP: 8-byte header with checksum; one packet per datagram.
 *  ICMP port unreachable (3/3) with the original IP header + 8 bytes;
 *  ICMPv6 port unreachable (1/4) with as much of the original packet as
 *  keeps it within 1280 bytes.
 *
 * Each packet is written once, by the process whose side sends it: data and
 * FIN by the sender, ACKs of received data by the receiver when it reads, the
 * whole handshake (or SYN + RST) by the connecting side.
 */

#define SWRAP_PCAP_MAGIC 0xA1B2C3D4
#define SWRAP_PCAP_VERSION_MAJOR 2
#define SWRAP_PCAP_VERSION_MINOR 4
#define SWRAP_PCAP_SNAPLEN 262144
#define SWRAP_PCAP_LINKTYPE_RAW 101

#define SWRAP_PCAP_TTL 64
#define SWRAP_PCAP_TCP_WINDOW 65535
#define SWRAP_PCAP_IPV4_OVERHEAD 40
#define SWRAP_PCAP_IPV6_OVERHEAD 60
#define SWRAP_PCAP_ICMP6_MAX 1280

#define SWRAP_PCAP_FNV_OFFSET 2166136261
#define SWRAP_PCAP_FNV_PRIME 16777619

#define SWRAP_TCP_FIN 1
#define SWRAP_TCP_SYN 2
#define SWRAP_TCP_RST 4
#define SWRAP_TCP_PSH 8
#define SWRAP_TCP_ACK 16

struct swrap_pcap_file_header {
	uint32_t magic;
	uint16_t version_major;
	uint16_t version_minor;
	int32_t thiszone;
	uint32_t sigfigs;
	uint32_t snaplen;
	uint32_t linktype;
};

struct swrap_pcap_record_header {
	uint32_t ts_sec;
	uint32_t ts_usec;
	uint32_t incl_len;
	uint32_t orig_len;
};
