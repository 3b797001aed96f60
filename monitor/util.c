/* Small helpers: Docker's time stamps, Go's JSON string escaping, files and socket paths. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* RFC 3339 in UTC as Go's time.RFC3339Nano prints it (Docker's format): nanoseconds with
 * trailing zeros dropped, no fraction at all when it is zero. */
void format_time(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	char frac[16] = "";

	gmtime_r(&ts->tv_sec, &tm);
	if (ts->tv_nsec) {
		int n = snprintf(frac, sizeof frac, ".%09ld", ts->tv_nsec);
		while (n > 1 && frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

void now_rfc3339(char *buf, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	format_time(&ts, buf, len);
}

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Length of the valid UTF-8 sequence at s (as Go's utf8.DecodeRune accepts it: no overlong
 * forms, surrogates or code points above U+10FFFF), or 0 if the byte starts none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t need;

	if (b >= 0xc2 && b <= 0xdf)
		need = 2;
	else if (b >= 0xe0 && b <= 0xef)
		need = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		need = 4;
	else
		return 0;
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

/* The inside of a JSON string as Docker's json-file writer makes it: `"` and `\` escaped,
 * \n \r \t, other control characters as \u00XX, `<` `>` `&` as \u003c \u003e \u0026 (Go's
 * HTML-safe escaping), U+2028/U+2029 escaped, each invalid UTF-8 byte as \ufffd. */
void json_escape(const unsigned char *s, size_t n, put_fn put, void *ctx)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0, i = 0;

	while (i < n) {
		unsigned char b = s[i];
		char esc[8];
		size_t elen = 0, step = 1;

		if (b < 0x80) {
			if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') {
				i++;
				continue;
			}
			esc[0] = '\\';
			elen = 2;
			if (b == '\\' || b == '"')
				esc[1] = (char)b;
			else if (b == '\n')
				esc[1] = 'n';
			else if (b == '\r')
				esc[1] = 'r';
			else if (b == '\t')
				esc[1] = 't';
			else {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[b >> 4];
				esc[5] = hex[b & 0xf];
				elen = 6;
			}
		} else {
			step = utf8_seq(s + i, n - i);
			if (step == 0) {
				memcpy(esc, "\\ufffd", 6);
				elen = 6;
				step = 1;
			} else if (step == 3 && b == 0xe2 && s[i + 1] == 0x80 &&
				   (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
				memcpy(esc, "\\u202", 5);
				esc[5] = s[i + 2] == 0xa8 ? '8' : '9';
				elen = 6;
			} else {
				i += step;
				continue;
			}
		}
		if (start < i)
			put(ctx, (const char *)s + start, i - start);
		put(ctx, esc, elen);
		i += step;
		start = i;
	}
	if (start < n)
		put(ctx, (const char *)s + start, n - start);
}

static void count_put(void *ctx, const char *p, size_t n)
{
	(void)p;
	*(size_t *)ctx += n;
}

size_t json_escaped_len(const unsigned char *s, size_t n)
{
	size_t len = 0;

	json_escape(s, n, count_put, &len);
	return len;
}

int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Readers never see half a file: write a temporary one beside it, then rename over.
 * atomic_open gives the temporary file; atomic_commit closes it and, if rc is 0 and the
 * close went well, renames it over `name` (else removes it). Returns 0 or -1. */
static void tmp_name(char *tmp, size_t len, const char *name)
{
	snprintf(tmp, len, ".%s.tmp", name);
}

int atomic_open(int dfd, const char *name, mode_t mode)
{
	char tmp[64];

	tmp_name(tmp, sizeof tmp, name);
	return openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
}

int atomic_commit(int dfd, const char *name, int fd, int rc)
{
	char tmp[64];

	tmp_name(tmp, sizeof tmp, name);
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0)
		rc = renameat(dfd, tmp, dfd, name);
	if (rc < 0)
		unlinkat(dfd, tmp, 0);
	return rc;
}

/* Up to len-1 bytes of a small file, NUL-terminated; -1 if it cannot be read. */
ssize_t read_small_file(int dfd, const char *path, char *buf, size_t len)
{
	size_t got = 0;
	int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (got + 1 < len) {
		ssize_t r = read(fd, buf + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* The address of a socket in --dir. sun_path holds 108 bytes; a longer path goes through
 * /proc/<pid>/fd/<dir fd>/, which names the same directory (for_others: a path that other
 * processes, the runtime, can use too). */
int sock_path(struct sockaddr_un *sa, const char *name, bool for_others)
{
	int n;

	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", opt.dir, name);
	if (n > 0 && (size_t)n < sizeof sa->sun_path)
		return 0;
	if (for_others)
		n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/%d/fd/%d/%s", (int)getpid(),
			     dir_fd, name);
	else
		n = snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", dir_fd, name);
	return n > 0 && (size_t)n < sizeof sa->sun_path ? 0 : -1;
}

/* Close every descriptor from lowest up (close_range, or one by one on old kernels). */
void close_from(int lowest)
{
	if (close_range((unsigned)lowest, ~0U, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lowest; fd < (max > 0 ? max : 1024); fd++)
		close((int)fd);
}

/* close_from, but the fds in keep (any order) stay open. */
void close_from_except(int lowest, const int *keep, int count)
{
	int next = lowest;

	for (;;) {
		int upto = -1; /* the lowest kept fd at or above next */
		for (int i = 0; i < count; i++)
			if (keep[i] >= next && (upto < 0 || keep[i] < upto))
				upto = keep[i];
		if (upto < 0)
			break;
		if (upto > next && close_range((unsigned)next, (unsigned)upto - 1, 0) < 0)
			for (int fd = next; fd < upto; fd++)
				close(fd);
		next = upto + 1;
	}
	close_from(next);
}

/* The engine's `stop` file: it is stopping the container on purpose, so no restart. */
bool stop_requested(void)
{
	return faccessat(dir_fd, "stop", F_OK, 0) == 0;
}

/* A listening unix socket at --dir/name (non-blocking, owner only). */
int listen_unix(const char *name, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || sock_path(&sa, name, false) < 0) {
		snprintf(err, errlen, "cannot make %s/%s: %s", opt.dir, name,
			 fd < 0 ? strerror(errno) : "path too long");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	unlinkat(dir_fd, name, 0);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "cannot listen on %s/%s: %s", opt.dir, name, strerror(errno));
		close(fd);
		return -1;
	}
	fchmodat(dir_fd, name, 0600, 0);
	return fd;
}
