/* log.c - SOCKET_WRAPPER_DEBUGLEVEL messages and the one-line error reports. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "swrap.h"

static void swrap_emit(const char *func, const char *fmt, va_list ap)
{
	char line[512];
	int n;

	if (func != NULL)
		n = snprintf(line, sizeof(line), "socket_wrapper[%d]: %s: ", (int)getpid(), func);
	else
		n = snprintf(line, sizeof(line), "socket_wrapper[%d]: ", (int)getpid());
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write, so lines of concurrent processes do not interleave. */
	ssize_t ignored = SWRAP_LIBC(write)(2, line, len);
	(void)ignored;
}

void swrap_log_at(int level, const char *func, const char *fmt, ...)
{
	const struct swrap_config *cfg = swrap_config_last();
	if (cfg == NULL || level > cfg->debuglevel)
		return;
	va_list ap;
	va_start(ap, fmt);
	swrap_emit(func, fmt, ap);
	va_end(ap);
}

void swrap_say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	swrap_emit(NULL, fmt, ap);
	va_end(ap);
}
