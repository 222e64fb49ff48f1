/*
 * config.c - reading and validating SOCKET_WRAPPER_* variables.
 *
 * Programs may setenv() while running, so the environment is looked at again
 * on every control call (socket, bind, connect, accept), never on the data
 * path.  One pass over environ collects the variables into a canonical key;
 * while the key is unchanged the parsed snapshot is reused, and each distinct
 * key is parsed (and reported, if bad) only once.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "swrap.h"

/* Helgrind does not see C11 atomics: tell it how snapshots are published. */
#if __has_include(<valgrind/helgrind.h>)
#include <valgrind/helgrind.h>
#else
#define ANNOTATE_HAPPENS_BEFORE(obj) ((void)(obj))
#define ANNOTATE_HAPPENS_AFTER(obj) ((void)(obj))
#endif

extern char **environ;

enum {
	VAR_DIR,
	VAR_IPV4_NETWORK,
	VAR_DEFAULT_IFACE,
	VAR_PCAP_FILE,
	VAR_MTU,
	VAR_MAX_SOCKETS,
	VAR_DEBUGLEVEL,
	VAR_DISABLE_DEEPBIND,
	VAR_DIR_ALLOW_ORIG,
	VAR_COUNT
};

#define PREFIX "SOCKET_WRAPPER_"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

static const char *const var_suffix[VAR_COUNT] = {
	"DIR",   "IPV4_NETWORK", "DEFAULT_IFACE",    "PCAP_FILE",      "MTU",
	"MAX_SOCKETS", "DEBUGLEVEL",   "DISABLE_DEEPBIND", "DIR_ALLOW_ORIG",
};

struct snapshot {
	struct swrap_config cfg;
	size_t key_len;
	struct snapshot *next;
	char key[]; /* "NAME=value\0" for each set variable, in var_suffix order */
};

/* Parsed snapshots are immutable and never freed: a thread may still read the
 * one it got while another thread switches to a new one.  Their number is
 * bounded by the distinct environments the program sets. */
static struct snapshot *snapshots;
static _Atomic(struct snapshot *) current;
/* Serialises building snapshots; the common case (key unchanged) takes no lock. */
static pthread_mutex_t config_mutex = PTHREAD_MUTEX_INITIALIZER;

#define KEY_MAX 16384

/* Collect the variables; returns the key length, or 0 if it did not fit. */
static size_t collect(char *key, const char *values[VAR_COUNT])
{
	key[0] = '\0';
	for (int i = 0; i < VAR_COUNT; i++)
		values[i] = NULL;
	for (char **e = environ; e != NULL && *e != NULL; e++) {
		const char *entry = *e;
		if (entry[0] != 'S' || strncmp(entry, PREFIX, PREFIX_LEN) != 0)
			continue;
		const char *name = entry + PREFIX_LEN;
		const char *eq = strchr(name, '=');
		if (eq == NULL || eq[1] == '\0')
			continue; /* empty means unset */
		for (int i = 0; i < VAR_COUNT; i++) {
			size_t n = strlen(var_suffix[i]);
			if ((size_t)(eq - name) == n && memcmp(name, var_suffix[i], n) == 0) {
				values[i] = entry;
				break;
			}
		}
	}
	size_t len = 0;
	for (int i = 0; i < VAR_COUNT; i++) {
		if (values[i] == NULL)
			continue;
		size_t n = strlen(values[i]) + 1;
		if (len + n > KEY_MAX)
			return 0;
		memcpy(key + len, values[i], n);
		values[i] = strchr(values[i], '=') + 1;
		len += n;
	}
	return len == 0 ? 1 : len; /* an empty key is one NUL byte */
}

static void report(struct swrap_config *cfg, int var, const char *value, int err,
		   const char *what)
{
	swrap_say("%s%s=\"%s\": %s", PREFIX, var_suffix[var], value, what);
	if (cfg->error == 0)
		cfg->error = err;
}

/* Decimal digits only, within [min, max]. */
static bool parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v = 0;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = (unsigned)v;
	return true;
}

static void parse_uint_var(struct swrap_config *cfg, const char *values[], int var,
			   unsigned min, unsigned max, unsigned *out)
{
	const char *v = values[var];
	if (v == NULL || parse_uint(v, min, max, out))
		return;
	char what[64];
	snprintf(what, sizeof(what), "expected an integer from %u to %u", min, max);
	report(cfg, var, v, EINVAL, what);
}

static void parse_dir(struct swrap_config *cfg, const char *value, bool allow_orig)
{
	static const char expect_dir[] = "expected an existing directory";
	struct stat st;
	char what[160];

	if (stat(value, &st) != 0) {
		int err = errno;
		if (err == ENOENT)
			snprintf(what, sizeof(what), "no such directory; %s", expect_dir);
		else
			snprintf(what, sizeof(what), "%c%s; %s", tolower(strerror(err)[0]),
				 strerror(err) + 1, expect_dir);
		report(cfg, VAR_DIR, value, err, what);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(what, sizeof(what), "not a directory; %s", expect_dir);
		report(cfg, VAR_DIR, value, ENOTDIR, what);
		return;
	}
	char real[PATH_MAX];
	const char *use = realpath(value, real) != NULL ? real : value;
	if (strlen(use) > SWRAP_DIR_MAX_LEN && allow_orig)
		use = value;
	if (strlen(use) > SWRAP_DIR_MAX_LEN) {
		snprintf(what, sizeof(what),
			 "socket paths would not fit in sun_path; expected a directory path of at "
			 "most %d bytes (or set SOCKET_WRAPPER_DIR_ALLOW_ORIG)",
			 SWRAP_DIR_MAX_LEN);
		report(cfg, VAR_DIR, value, ENAMETOOLONG, what);
		return;
	}
	strcpy(cfg->dir, use);
}

static void parse(struct swrap_config *cfg, const char *values[VAR_COUNT])
{
	cfg->ipv4_net = SWRAP_NET_LOOPBACK;
	cfg->default_iface = SWRAP_IFACE_DEFAULT;
	cfg->mtu = SWRAP_MTU_DEFAULT;
	cfg->max_sockets = SWRAP_MAX_SOCKETS_DEFAULT;
	cfg->debuglevel = 0;
	cfg->enabled = values[VAR_DIR] != NULL;
	if (!cfg->enabled)
		return; /* inert: nothing else matters */
	const char *pcap = values[VAR_PCAP_FILE];
	if (pcap != NULL && strlen(pcap) < sizeof(cfg->pcap_file))
		strcpy(cfg->pcap_file, pcap);
	else if (pcap != NULL) /* the traffic goes on without a trace */
		swrap_say("%sPCAP_FILE=\"%.64s...\": path too long; not tracing", PREFIX,
			  pcap);

	unsigned level = 0;
	parse_uint_var(cfg, values, VAR_DEBUGLEVEL, 0, SWRAP_DEBUGLEVEL_MAX, &level);
	cfg->debuglevel = (int)level;
	parse_dir(cfg, values[VAR_DIR], values[VAR_DIR_ALLOW_ORIG] != NULL);
	const char *net = values[VAR_IPV4_NETWORK];
	if (net != NULL) {
		if (strcmp(net, "127.0.0.0") == 0)
			cfg->ipv4_net = SWRAP_NET_LOOPBACK;
		else if (strcmp(net, "10.53.57.0") == 0)
			cfg->ipv4_net = SWRAP_NET_TEN;
		else
			report(cfg, VAR_IPV4_NETWORK, net, EINVAL,
			       "expected 127.0.0.0 or 10.53.57.0");
	}
	parse_uint_var(cfg, values, VAR_DEFAULT_IFACE, SWRAP_IFACE_MIN, SWRAP_IFACE_MAX,
		       &cfg->default_iface);
	parse_uint_var(cfg, values, VAR_MTU, SWRAP_MTU_MIN, SWRAP_MTU_MAX, &cfg->mtu);
	parse_uint_var(cfg, values, VAR_MAX_SOCKETS, SWRAP_MAX_SOCKETS_MIN,
		       SWRAP_MAX_SOCKETS_LIMIT, &cfg->max_sockets);
}

static struct snapshot *find_or_build(const char *key, size_t key_len,
				      const char *values[VAR_COUNT])
{
	for (struct snapshot *s = snapshots; s != NULL; s = s->next)
		if (s->key_len == key_len && memcmp(s->key, key, key_len) == 0)
			return s;
	struct snapshot *s = calloc(1, sizeof(*s) + key_len);
	if (s == NULL)
		return NULL;
	memcpy(s->key, key, key_len);
	s->key_len = key_len;
	s->cfg.key = s->key;
	parse(&s->cfg, values);
	s->next = snapshots;
	snapshots = s;
	return s;
}

/* Used when memory or the key buffer runs out: fail closed, never go to the
 * real network. */
static const struct swrap_config broken = {
	.key = "",
	.enabled = true,
	.error = ENOMEM,
	.ipv4_net = SWRAP_NET_LOOPBACK,
	.default_iface = SWRAP_IFACE_DEFAULT,
	.mtu = SWRAP_MTU_DEFAULT,
	.max_sockets = SWRAP_MAX_SOCKETS_DEFAULT,
};

const struct swrap_config *swrap_config_current(void)
{
	char key[KEY_MAX];
	const char *values[VAR_COUNT];
	size_t key_len = collect(key, values);

	struct snapshot *cur = atomic_load_explicit(&current, memory_order_acquire);
	ANNOTATE_HAPPENS_AFTER(&current);
	if (cur != NULL && key_len != 0 && cur->key_len == key_len &&
	    memcmp(cur->key, key, key_len) == 0)
		return &cur->cfg;
	if (key_len == 0) {
		swrap_say("SOCKET_WRAPPER_* variables longer than %d bytes in all", KEY_MAX);
		return &broken;
	}

	pthread_mutex_lock(&config_mutex);
	struct snapshot *s = find_or_build(key, key_len, values);
	if (s != NULL) {
		ANNOTATE_HAPPENS_BEFORE(&current);
		atomic_store_explicit(&current, s, memory_order_release);
	}
	pthread_mutex_unlock(&config_mutex);
	return s != NULL ? &s->cfg : &broken;
}

const struct swrap_config *swrap_config_last(void)
{
	struct snapshot *cur = atomic_load_explicit(&current, memory_order_acquire);
	ANNOTATE_HAPPENS_AFTER(&current);
	return cur != NULL ? &cur->cfg : NULL;
}

const struct swrap_config *swrap_config_for_socket(bool *inert)
{
	const struct swrap_config *cfg = swrap_config_current();
	*inert = !cfg->enabled;
	if (cfg->enabled && cfg->error != 0) {
		errno = cfg->error;
		return NULL;
	}
	return cfg;
}

void swrap_config_atfork_prepare(void)
{
	pthread_mutex_lock(&config_mutex);
}

void swrap_config_atfork_release(void)
{
	pthread_mutex_unlock(&config_mutex);
}
