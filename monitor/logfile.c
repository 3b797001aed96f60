/* Docker's json-file log: one JSON object per line, {"log":...,"stream":...,"time":...}.
 *
 * Output is cut into lines as Docker's log copier does: every complete line is an entry
 * ending with its \n; a line that fills the 16 KiB buffer without a newline, and what is
 * left at the end of the stream, are written as pieces without one (the pieces of one line
 * share the time of the first, as Docker's partial messages do).
 *
 * Rotation happens before an entry would make the file larger than --log-max-size. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int log_fd = -1;
static long long log_size; /* bytes in the current file */

/* Entries go out through this small buffer rather than being built whole (an escaped
 * 16 KiB piece can reach 96 KiB). */
static char stage[4096];
static size_t stage_len;
static bool write_failed;

static void stage_flush(void)
{
	if (stage_len && write_all(log_fd, stage, stage_len) < 0)
		write_failed = true;
	stage_len = 0;
}

static void stage_put(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	while (n > 0) {
		size_t room = sizeof stage - stage_len, k = n < room ? n : room;
		memcpy(stage + stage_len, p, k);
		stage_len += k;
		p += k;
		n -= k;
		if (stage_len == sizeof stage)
			stage_flush();
	}
}

int log_open(char *err, size_t errlen)
{
	struct stat st;

	if (!opt.log_file)
		return 0;
	log_fd = open(opt.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
	if (log_fd < 0 || fstat(log_fd, &st) < 0) {
		snprintf(err, errlen, "cannot open log file %s: %s", opt.log_file, strerror(errno));
		return -1;
	}
	log_size = st.st_size;
	return 0;
}

/* FILE.(N-2) -> FILE.(N-1) ... FILE -> FILE.1 and a new FILE; with one file, truncate it. */
static void rotate(void)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;
	int fd;

	if (opt.log_max_files <= 1) {
		if (ftruncate(log_fd, 0) == 0)
			log_size = 0;
		return;
	}
	for (int i = opt.log_max_files - 1; i >= 1; i--) {
		snprintf(to, sizeof to, "%s.%d", opt.log_file, i);
		if (i > 1)
			snprintf(from, sizeof from, "%s.%d", opt.log_file, i - 1);
		else
			snprintf(from, sizeof from, "%s", opt.log_file);
		if (rename(from, to) < 0 && errno != ENOENT)
			return; /* keep writing the current file rather than lose output */
	}
	fd = open(opt.log_file, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOCTTY,
		  0640);
	if (fd < 0)
		return; /* the renamed file stays open: keep writing there */
	close(log_fd);
	log_fd = fd;
	log_size = fstat(fd, &st) == 0 ? st.st_size : 0;
}

static void write_entry(const struct stream *s, const char *data, size_t n, const char *time)
{
	static const char p1[] = "{\"log\":\"", p2[] = "\",\"stream\":\"", p3[] = "\",\"time\":\"",
			  p4[] = "\"}\n";
	size_t esc = json_escaped_len((const unsigned char *)data, n);
	long long total = (long long)(sizeof p1 + sizeof p2 + sizeof p3 + sizeof p4 - 4 + esc +
				      strlen(s->name) + strlen(time));
	struct stat st;

	if (opt.log_max_size > 0 && log_size > 0 && log_size + total > opt.log_max_size)
		rotate();
	write_failed = false;
	stage_put(NULL, p1, sizeof p1 - 1);
	json_escape((const unsigned char *)data, n, stage_put, NULL);
	stage_put(NULL, p2, sizeof p2 - 1);
	stage_put(NULL, s->name, strlen(s->name));
	stage_put(NULL, p3, sizeof p3 - 1);
	stage_put(NULL, time, strlen(time));
	stage_put(NULL, p4, sizeof p4 - 1);
	stage_flush();
	if (!write_failed)
		log_size += total;
	else if (fstat(log_fd, &st) == 0) /* a disk full: count what really landed */
		log_size = st.st_size;
}

/* A complete line: the last piece of a line logged in pieces keeps the first one's time. */
static void write_line(struct stream *s, const char *data, size_t n)
{
	char now[TIME_MAX];

	if (s->ptime[0]) {
		write_entry(s, data, n, s->ptime);
		s->ptime[0] = '\0';
		return;
	}
	now_rfc3339(now, sizeof now);
	write_entry(s, data, n, now);
}

static void write_piece(struct stream *s, const char *data, size_t n)
{
	if (!s->ptime[0])
		now_rfc3339(s->ptime, sizeof s->ptime);
	write_entry(s, data, n, s->ptime);
}

/* n bytes were just read into s->buf after its s->len pending ones: log the complete lines
 * and keep the start of the next one (or log it as a piece once the buffer is full). */
void log_data(struct stream *s, size_t n)
{
	size_t end = s->len + n, p = 0;
	char *nl;

	if (log_fd < 0) {
		s->len = 0;
		return;
	}
	while ((nl = memchr(s->buf + p, '\n', end - p))) {
		size_t q = (size_t)(nl - s->buf) + 1;
		write_line(s, s->buf + p, q - p);
		p = q;
	}
	if (p == 0 && end == sizeof s->buf) {
		write_piece(s, s->buf, end);
		p = end;
	}
	memmove(s->buf, s->buf + p, end - p);
	s->len = end - p;
}

/* The stream ended (the container exited): what is left is an entry of its own. */
void log_end_of_stream(struct stream *s)
{
	if (log_fd >= 0 && s->len > 0)
		write_piece(s, s->buf, s->len);
	s->len = 0;
	s->ptime[0] = '\0';
}
