/*
 * udpecho - a UDP echo service and a client that finds servers by broadcast.
 *
 *   udpecho server HOST PORT        bind HOST:PORT (IPv4 or IPv6, "::" is dual stack),
 *                                   print "ready", then answer every datagram with
 *                                   "echo <data>" to its source and print
 *                                   "request from HOST PORT: DATA"; a datagram "quit" ends it
 *   udpecho client DEST PORT MS     with SO_BROADCAST, send "ping" to DEST:PORT, then print
 *                                   "reply from HOST PORT: DATA" for every reply until MS
 *                                   milliseconds pass without one; "sent N" or the errno name
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progs.h"

static int server(const char *host, const char *port)
{
	struct sockaddr_storage ss, from;
	socklen_t len = make_addr(host, (unsigned)atoi(port), &ss);
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0) {
		printf("bind: %s\n", ename(errno));
		return 1;
	}
	printf("ready\n");
	for (;;) {
		char buf[2048], reply[2100], who[80];
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			printf("recvfrom: %s\n", ename(errno));
			return 1;
		}
		buf[n] = 0;
		addr_text(&from, who, sizeof(who));
		printf("request from %s: %s\n", who, buf);
		if (strcmp(buf, "quit") == 0)
			return 0;
		int m = snprintf(reply, sizeof(reply), "echo %s", buf);
		if (sendto(fd, reply, (size_t)m, 0, (struct sockaddr *)&from, flen) < 0)
			printf("sendto: %s\n", ename(errno));
	}
}

static int client(const char *dest, const char *port, int ms)
{
	struct sockaddr_storage ss, from;
	socklen_t len = make_addr(dest, (unsigned)atoi(port), &ss);
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	int on = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof(on)) < 0) {
		perror("udpecho: socket");
		return 2;
	}
	ssize_t sent = sendto(fd, "ping", 4, 0, (struct sockaddr *)&ss, len);
	if (sent < 0) {
		printf("sendto: %s\n", ename(errno));
		return 1;
	}
	printf("sent %zd\n", sent);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int rc = poll(&p, 1, ms);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0)
			break;
		char buf[2048], who[80];
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			printf("recvfrom: %s\n", ename(errno));
			return 1;
		}
		buf[n] = 0;
		addr_text(&from, who, sizeof(who));
		printf("reply from %s: %s\n", who, buf);
	}
	printf("done\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "server") == 0)
		return server(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "client") == 0)
		return client(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: udpecho server HOST PORT | udpecho client DEST PORT MS\n");
	return 2;
}
