/*
 * swbench - the workloads of `make bench`, one run of one workload per invocation.
 *
 *   swbench WORKLOAD FAMILY SECONDS
 *
 * WORKLOAD  pingpong  TCP, 1 byte each way              -> ns per round trip
 *           bulk      TCP stream of 64 KiB write()s     -> MiB/s (until the server's ack)
 *           connect   socket+connect, server accept+close, client sees EOF, close
 *                                                       -> cycles per second
 *           udp       UDP, 64 bytes each way            -> ns per round trip
 *           sockclose socket(SOCK_STREAM)+close()       -> ns per pair
 *           pipe      write()+read() of 1 byte on a pipe -> ns per pair
 *           spawn     fork+execve(/bin/true)+waitpid    -> us per process; the child gets
 *                     LD_PRELOAD=$BENCH_CHILD_PRELOAD (if set), this process none
 *           rss       VmRSS at main, after 1 socket, after 1+$BENCH_RSS_SOCKETS sockets
 *
 * cpu_value is the same measure computed from CPU time instead of wall-clock time: of this
 * process, its reaped children (spawn) and the server (read through its CPU clock), i.e.
 * ns of CPU per op, ops per CPU second, MiB per CPU second.  Other load on the machine
 * inflates it much less than wall-clock time.
 * FAMILY    inet      AF_INET (kernel loopback, or emulated under a preloaded wrapper)
 *           unix      AF_UNIX, socket files in $BENCH_DIR (the physical limit)
 *
 * Environment: BENCH_HOST (server address, default 127.0.0.1), BENCH_SERVER_IFACE and
 * BENCH_CLIENT_IFACE (copied into SOCKET_WRAPPER_DEFAULT_IFACE of the server child and of
 * the client before any socket exists), BENCH_DIR (unix family), BENCH_TIMEOUT (seconds,
 * default 30: every process of a run is killed by SIGALRM after it).
 *
 * The server is a forked child, so both ends run under the same preload as in real use.
 * A run first warms up for a tenth of SECONDS, then measures.  The result is one line
 * "value=V cpu_value=C ops=N secs=S cpu_secs=T" (rss: "rss_start=K rss_one=K rss_n=K n=N", in KiB).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int use_unix;
static const char *host = "127.0.0.1";
static const char *bench_dir = "/tmp";
static unsigned timeout_s = 30;

struct addr {
	socklen_t len;
	struct sockaddr_storage ss;
};

static void die(const char *what)
{
	fprintf(stderr, "swbench[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	exit(2);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this process, its waited-for children and the running server: a cost that
 * other load on the machine inflates much less than wall-clock time. */
static int have_server_clock;
static clockid_t server_clock;

static double cpu_now(void)
{
	struct timespec ts;
	struct rusage ru;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	getrusage(RUSAGE_CHILDREN, &ru);
	double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 + (double)ru.ru_utime.tv_sec +
		   (double)ru.ru_stime.tv_sec +
		   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	if (have_server_clock && clock_gettime(server_clock, &ts) == 0)
		t += (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	return t;
}

static void set_iface(const char *var)
{
	const char *v = getenv(var);
	if (v != NULL && *v != '\0')
		setenv("SOCKET_WRAPPER_DEFAULT_IFACE", v, 1);
}

static int family(void)
{
	return use_unix ? AF_UNIX : AF_INET;
}

static void unix_addr(struct addr *a, const char *name)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
	memset(a, 0, sizeof(*a));
	sun->sun_family = AF_UNIX;
	int n = snprintf(sun->sun_path, sizeof(sun->sun_path), "%s/%s", bench_dir, name);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path)) {
		errno = ENAMETOOLONG;
		die("BENCH_DIR");
	}
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
}

static void listen_addr(struct addr *a)
{
	if (use_unix) {
		unix_addr(a, "srv");
		unlink(((struct sockaddr_un *)&a->ss)->sun_path);
		return;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	memset(a, 0, sizeof(*a));
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		errno = EINVAL;
		die("BENCH_HOST");
	}
	a->len = sizeof(*sin);
}

static void nodelay(int fd)
{
	int one = 1;
	if (!use_unix)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Reads exactly n bytes; returns 0 on EOF before the first byte. */
static int read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		if (r == 0) {
			if (got == 0)
				return 0;
			errno = EPIPE;
			die("short read");
		}
		got += (size_t)r;
	}
	return 1;
}

/* ------------------------------------------------------------------ servers */

static void serve_pingpong(int lfd)
{
	int c = accept(lfd, NULL, NULL);
	if (c < 0)
		die("accept");
	nodelay(c);
	char b;
	while (read_all(c, &b, 1))
		write_all(c, &b, 1);
}

static void serve_bulk(int lfd)
{
	static char buf[256 * 1024];
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			die("accept");
		uint64_t total = 0;
		for (;;) {
			ssize_t r = read(c, buf, sizeof(buf));
			if (r < 0) {
				if (errno == EINTR)
					continue;
				die("read");
			}
			if (r == 0)
				break;
			total += (uint64_t)r;
		}
		write_all(c, &total, sizeof(total));
		close(c);
	}
}

static void serve_connect(int lfd)
{
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		close(c);
	}
}

static void serve_udp(int fd)
{
	char buf[64];
	for (;;) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("recvfrom");
		}
		if (sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, flen) != r)
			die("sendto");
	}
}

/* Forks the server; returns its pid and the address it listens on. */
static pid_t start_server(int type, void (*serve)(int), struct addr *out)
{
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(timeout_s);
		close(p[0]);
		set_iface("BENCH_SERVER_IFACE");
		struct addr a;
		listen_addr(&a);
		int fd = socket(family(), type, 0);
		if (fd < 0)
			die("server socket");
		if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0)
			die("server bind");
		if (type == SOCK_STREAM && listen(fd, 1024) != 0)
			die("listen");
		a.len = sizeof(a.ss);
		if (getsockname(fd, (struct sockaddr *)&a.ss, &a.len) != 0)
			die("getsockname");
		write_all(p[1], &a, sizeof(a));
		close(p[1]);
		serve(fd);
		_exit(0);
	}
	close(p[1]);
	struct pollfd pfd = {.fd = p[0], .events = POLLIN};
	int r;
	do
		r = poll(&pfd, 1, 10000);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		errno = ETIMEDOUT;
		die("server did not start");
	}
	if (!read_all(p[0], out, sizeof(*out))) {
		waitpid(pid, NULL, 0);
		errno = EPIPE;
		die("server failed");
	}
	close(p[0]);
	have_server_clock = clock_getcpuclockid(pid, &server_clock) == 0;
	return pid;
}

static void stop_server(pid_t pid)
{
	have_server_clock = 0;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int connect_to(int type, const struct addr *a)
{
	int fd = socket(family(), type, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0)
		die("connect");
	return fd;
}

/* ------------------------------------------------------------------ clients */

struct result {
	double value;     /* per op (or throughput) from wall-clock time */
	double cpu_value; /* per op from CPU time (one-process workloads) */
	unsigned long ops;
	double secs;
	double cpu_secs;
};

/* Runs op in batches until secs have passed; returns (ops, elapsed). */
#define TIMED_LOOP(batch, dur_, res_, body)                                                   \
	do {                                                                                 \
		double t0_ = now(), t_ = t0_, c0_ = cpu_now();                               \
		unsigned long n_ = 0;                                                        \
		while (t_ - t0_ < (dur_)) {                                                  \
			for (int i_ = 0; i_ < (batch); i_++) {                               \
				body;                                                        \
			}                                                                    \
			n_ += (batch);                                                       \
			t_ = now();                                                          \
		}                                                                            \
		(res_)->ops = n_;                                                            \
		(res_)->secs = t_ - t0_;                                                     \
		(res_)->cpu_secs = cpu_now() - c0_;                                          \
	} while (0)

static void run_pingpong(double secs, struct result *res)
{
	struct addr a;
	pid_t srv = start_server(SOCK_STREAM, serve_pingpong, &a);
	int fd = connect_to(SOCK_STREAM, &a);
	nodelay(fd);
	char b = 'x';
	TIMED_LOOP(16, secs / 10, res, {
		write_all(fd, &b, 1);
		read_all(fd, &b, 1);
	});
	TIMED_LOOP(16, secs, res, {
		write_all(fd, &b, 1);
		read_all(fd, &b, 1);
	});
	res->value = res->secs / (double)res->ops * 1e9;
	res->cpu_value = res->cpu_secs / (double)res->ops * 1e9;
	close(fd);
	stop_server(srv);
}

static uint64_t bulk_once(const struct addr *a, double secs, double *elapsed, double *cpu)
{
	static char buf[65536];
	memset(buf, 'b', sizeof(buf));
	int fd = connect_to(SOCK_STREAM, a);
	uint64_t sent = 0, acked = 0;
	double t0 = now(), c0 = cpu_now();
	while (now() - t0 < secs) {
		for (int i = 0; i < 4; i++) {
			write_all(fd, buf, sizeof(buf));
			sent += sizeof(buf);
		}
	}
	if (shutdown(fd, SHUT_WR) != 0)
		die("shutdown");
	if (!read_all(fd, &acked, sizeof(acked)))
		die("no ack");
	*elapsed = now() - t0;
	*cpu = cpu_now() - c0;
	if (acked != sent) {
		fprintf(stderr, "swbench: bulk: sent %llu, server got %llu\n",
			(unsigned long long)sent, (unsigned long long)acked);
		exit(2);
	}
	close(fd);
	return sent;
}

static void run_bulk(double secs, struct result *res)
{
	struct addr a;
	pid_t srv = start_server(SOCK_STREAM, serve_bulk, &a);
	double el, cpu;
	(void)bulk_once(&a, secs / 10, &el, &cpu);
	uint64_t sent = bulk_once(&a, secs, &el, &cpu);
	res->ops = (unsigned long)(sent / 65536);
	res->secs = el;
	res->cpu_secs = cpu;
	res->value = (double)sent / el / (1024.0 * 1024.0);
	res->cpu_value = (double)sent / cpu / (1024.0 * 1024.0);
	stop_server(srv);
}

static void connect_cycle(const struct addr *a)
{
	int fd = connect_to(SOCK_STREAM, a);
	char b;
	if (read_all(fd, &b, 1))
		die("connect: expected EOF");
	close(fd);
}

static void run_connect(double secs, struct result *res)
{
	struct addr a;
	pid_t srv = start_server(SOCK_STREAM, serve_connect, &a);
	TIMED_LOOP(4, secs / 10, res, connect_cycle(&a));
	TIMED_LOOP(4, secs, res, connect_cycle(&a));
	res->value = (double)res->ops / res->secs;
	res->cpu_value = (double)res->ops / res->cpu_secs;
	stop_server(srv);
}

static void run_udp(double secs, struct result *res)
{
	struct addr a;
	pid_t srv = start_server(SOCK_DGRAM, serve_udp, &a);
	int fd = socket(family(), SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	if (use_unix) {
		/* A Unix datagram client needs a name to get answers. */
		struct addr me;
		char name[32];
		snprintf(name, sizeof(name), "cli%d", (int)getpid());
		unix_addr(&me, name);
		unlink(((struct sockaddr_un *)&me.ss)->sun_path);
		if (bind(fd, (struct sockaddr *)&me.ss, me.len) != 0)
			die("bind");
	}
	char buf[64];
	memset(buf, 'u', sizeof(buf));
#define UDP_RT                                                                               \
	do {                                                                                 \
		if (sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&a.ss, a.len) != 64)  \
			die("sendto");                                                       \
		if (recv(fd, buf, sizeof(buf), 0) != 64)                                     \
			die("recv");                                                         \
	} while (0)
	TIMED_LOOP(16, secs / 10, res, UDP_RT);
	TIMED_LOOP(16, secs, res, UDP_RT);
	res->value = res->secs / (double)res->ops * 1e9;
	res->cpu_value = res->cpu_secs / (double)res->ops * 1e9;
	close(fd);
	stop_server(srv);
}

static void sock_close(void)
{
	int fd = socket(family(), SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	close(fd);
}

static void run_sockclose(double secs, struct result *res)
{
	TIMED_LOOP(64, secs / 10, res, sock_close());
	TIMED_LOOP(64, secs, res, sock_close());
	res->value = res->secs / (double)res->ops * 1e9;
	res->cpu_value = res->cpu_secs / (double)res->ops * 1e9;
}

static void run_pipe(double secs, struct result *res)
{
	int p[2];
	if (pipe(p) != 0)
		die("pipe");
	char b = 'p';
#define PIPE_OP                                                                              \
	do {                                                                                 \
		if (write(p[1], &b, 1) != 1)                                                 \
			die("write");                                                        \
		if (read(p[0], &b, 1) != 1)                                                  \
			die("read");                                                         \
	} while (0)
	TIMED_LOOP(256, secs / 10, res, PIPE_OP);
	TIMED_LOOP(256, secs, res, PIPE_OP);
	res->value = res->secs / (double)res->ops * 1e9;
	res->cpu_value = res->cpu_secs / (double)res->ops * 1e9;
	close(p[0]);
	close(p[1]);
}

static char **child_env;

static void spawn_true(void)
{
	static char *argv[] = {"/bin/true", NULL};
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execve(argv[0], argv, child_env);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			die("waitpid");
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "swbench: /bin/true failed (status %d)\n", st);
		exit(2);
	}
}

static void run_spawn(double secs, struct result *res)
{
	const char *pre = getenv("BENCH_CHILD_PRELOAD");
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	child_env = calloc(n + 2, sizeof(char *));
	if (child_env == NULL)
		die("calloc");
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			child_env[k++] = environ[i];
	if (pre != NULL && *pre != '\0') {
		size_t len = strlen(pre) + 12;
		child_env[k] = malloc(len);
		if (child_env[k] == NULL)
			die("malloc");
		snprintf(child_env[k], len, "LD_PRELOAD=%s", pre);
		k++;
	}
	child_env[k] = NULL;
	TIMED_LOOP(1, secs / 10, res, spawn_true());
	TIMED_LOOP(1, secs, res, spawn_true());
	res->value = res->secs / (double)res->ops * 1e6;
	res->cpu_value = res->cpu_secs / (double)res->ops * 1e6;
}

/* VmRSS in KiB, read without stdio (no buffer allocated before the first sample). */
static long rss_kib(void)
{
	static char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open /proc/self/status");
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die("read /proc/self/status");
	buf[n] = '\0';
	char *p = strstr(buf, "VmRSS:");
	return p != NULL ? strtol(p + 6, NULL, 10) : -1;
}

static void run_rss(void)
{
	long start = rss_kib();
	const char *v = getenv("BENCH_RSS_SOCKETS");
	long n = v != NULL ? strtol(v, NULL, 10) : 10000;
	int fd = socket(family(), SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	long one = rss_kib();
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit");
	rlim_t want = (rlim_t)n + 64;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
			rl.rlim_max = rl.rlim_cur = want; /* works as root */
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			die("setrlimit (RLIMIT_NOFILE too low for BENCH_RSS_SOCKETS)");
	}
	for (long i = 0; i < n; i++)
		if (socket(family(), SOCK_STREAM, 0) < 0)
			die("socket (rss)");
	long after = rss_kib();
	printf("rss_start=%ld rss_one=%ld rss_n=%ld n=%ld\n", start, one, after, n);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: swbench WORKLOAD inet|unix SECONDS\n");
		return 2;
	}
	const char *w = argv[1];
	use_unix = strcmp(argv[2], "unix") == 0;
	if (!use_unix && strcmp(argv[2], "inet") != 0) {
		fprintf(stderr, "swbench: family must be inet or unix\n");
		return 2;
	}
	double secs = strtod(argv[3], NULL);
	if (getenv("BENCH_HOST") != NULL)
		host = getenv("BENCH_HOST");
	if (getenv("BENCH_DIR") != NULL)
		bench_dir = getenv("BENCH_DIR");
	if (getenv("BENCH_TIMEOUT") != NULL)
		timeout_s = (unsigned)strtoul(getenv("BENCH_TIMEOUT"), NULL, 10);
	signal(SIGPIPE, SIG_IGN);
	alarm(timeout_s);
	if (strcmp(w, "rss") == 0) {
		run_rss();
		return 0;
	}
	set_iface("BENCH_CLIENT_IFACE");

	struct result res = {0};
	if (strcmp(w, "pingpong") == 0)
		run_pingpong(secs, &res);
	else if (strcmp(w, "bulk") == 0)
		run_bulk(secs, &res);
	else if (strcmp(w, "connect") == 0)
		run_connect(secs, &res);
	else if (strcmp(w, "udp") == 0)
		run_udp(secs, &res);
	else if (strcmp(w, "sockclose") == 0)
		run_sockclose(secs, &res);
	else if (strcmp(w, "pipe") == 0)
		run_pipe(secs, &res);
	else if (strcmp(w, "spawn") == 0)
		run_spawn(secs, &res);
	else {
		fprintf(stderr, "swbench: unknown workload %s\n", w);
		return 2;
	}
	printf("value=%.6g cpu_value=%.6g ops=%lu secs=%.6f cpu_secs=%.6f\n", res.value,
	       res.cpu_value, res.ops, res.secs, res.cpu_secs);
	return 0;
}
