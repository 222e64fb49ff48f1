/*
 * scale_maxsock - how many emulated sockets one process may hold (issue 6, item 3).
 *
 *   scale_maxsock ATTEMPTS
 *
 * Raises RLIMIT_NOFILE above ATTEMPTS (or prints "SKIP <reason>" and exits 77), then calls
 * socket(AF_INET, SOCK_STREAM, 0) up to ATTEMPTS times, keeping every socket, and stops at
 * the first failure.  Prints
 *   "opened N errno E secs S"   E = ENFILE, EMFILE, ... or "none" if all succeeded
 *   "reopen ok" | "reopen fail E"   after a failure: one socket closed, one more opened
 * Exit status 0 (the caller judges the numbers), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case ENFILE:
		return "ENFILE";
	case EMFILE:
		return "EMFILE";
	case ENOMEM:
		return "ENOMEM";
	case ENOBUFS:
		return "ENOBUFS";
	case EINVAL:
		return "EINVAL";
	default:
		return strerror(e);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: scale_maxsock ATTEMPTS\n");
		return 2;
	}
	alarm(120);
	long attempts = strtol(argv[1], NULL, 10);
	rlim_t need = (rlim_t)attempts + 64;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		perror("getrlimit");
		return 2;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur < need) {
		struct rlimit want = rl;
		want.rlim_cur = need;
		if (want.rlim_max != RLIM_INFINITY && want.rlim_max < need)
			want.rlim_max = need; /* allowed with CAP_SYS_RESOURCE */
		if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
			printf("SKIP RLIMIT_NOFILE: need %llu open files, hard limit is %llu and "
			       "cannot be raised (%s)\n", (unsigned long long)need,
			       (unsigned long long)rl.rlim_max, strerror(errno));
			return 77;
		}
	}
	int *fds = calloc((size_t)attempts, sizeof(int));
	if (fds == NULL) {
		perror("calloc");
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long opened = 0;
	int err = 0;
	while (opened < attempts) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			err = errno;
			break;
		}
		fds[opened++] = fd;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	printf("opened %ld errno %s secs %.3f\n", opened, err ? errname(err) : "none", secs);
	if (err != 0 && opened > 0) {
		close(fds[--opened]);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0)
			printf("reopen ok\n");
		else
			printf("reopen fail %s\n", errname(errno));
	}
	fflush(stdout);
	return 0;
}
