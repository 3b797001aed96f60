/* OOM detection: the container's memory cgroup counts OOM kills (`oom_kill` in v1's
 * memory.oom_control, v2's memory.events). The count is read when the container is created
 * and again when its init has exited, before `delete` removes the cgroup. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char counter_path[PATH_MAX]; /* "" when the container has no memory cgroup we found */
static long long baseline;

/* Reads a file line by line through a fixed buffer; longer lines are skipped. */
struct lines {
	int fd;
	size_t len, off;
	bool skipping;
	char buf[4096];
};

static char *lines_next(struct lines *l)
{
	for (;;) {
		char *nl = memchr(l->buf + l->off, '\n', l->len - l->off);
		if (nl) {
			char *line = l->buf + l->off;
			*nl = '\0';
			l->off = (size_t)(nl - l->buf) + 1;
			if (!l->skipping)
				return line;
			l->skipping = false;
			continue;
		}
		memmove(l->buf, l->buf + l->off, l->len - l->off);
		l->len -= l->off;
		l->off = 0;
		if (l->len == sizeof l->buf) { /* no newline in a full buffer: skip that line */
			l->len = 0;
			l->skipping = true;
		}
		ssize_t r = read(l->fd, l->buf + l->len, sizeof l->buf - l->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (l->len == 0 || l->skipping || l->len == sizeof l->buf)
				return NULL;
			l->buf[l->len] = '\0'; /* a last line without its newline */
			l->off = l->len = 0;
			return l->buf;
		}
		l->len += (size_t)r;
	}
}

static bool has_token(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p; p = strchr(p, ',')) {
		if (*p == ',')
			p++;
		if (strncmp(p, word, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
	}
	return false;
}

/* Where the cgroup `path` of a v1 hierarchy with `controller` (or v2 when controller is
 * NULL) is mounted, from the monitor's mountinfo; false if it is not. */
static bool mount_of(const char *controller, const char *path, char *out, size_t len)
{
	struct lines *l = malloc(sizeof *l);
	bool found = false;
	char *line;

	if (!l)
		return false;
	l->len = l->off = 0;
	l->skipping = false;
	l->fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	while (l->fd >= 0 && !found && (line = lines_next(l))) {
		/* id parent major:minor root mountpoint options [optional...] - type source super */
		char *field[6], *save = NULL, *tok, *type = NULL, *super = NULL;
		int i = 0;
		for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			if (i < 6)
				field[i] = tok;
			if (strcmp(tok, "-") == 0 && i >= 6) {
				type = strtok_r(NULL, " ", &save);
				strtok_r(NULL, " ", &save);
				super = strtok_r(NULL, " ", &save);
				break;
			}
			i++;
		}
		if (!type || !super)
			continue;
		if (controller ? strcmp(type, "cgroup") != 0 || !has_token(super, controller)
			       : strcmp(type, "cgroup2") != 0)
			continue;
		/* The mount shows the hierarchy from its root: drop that prefix from the path. */
		const char *root = field[3], *rel = path;
		size_t rlen = strlen(root);
		if (strcmp(root, "/") != 0 && strncmp(path, root, rlen) == 0 &&
		    (path[rlen] == '/' || path[rlen] == '\0'))
			rel = path + rlen;
		int n = snprintf(out, len, "%s%s", field[4], rel);
		found = n > 0 && (size_t)n < len;
	}
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	return found;
}

/* The count of OOM kills in the cgroup's counter file, or -1 if it cannot be read. */
static long long read_counter(void)
{
	char buf[1024];

	if (!counter_path[0] || read_small_file(AT_FDCWD, counter_path, buf, sizeof buf) < 0)
		return -1;
	for (char *line = buf; line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (strncmp(line, "oom_kill ", 9) == 0)
			return strtoll(line + 9, NULL, 10);
	}
	return -1;
}

/* Finds the init's memory cgroup (v1's memory hierarchy first: on a hybrid host the memory
 * controller is there) and records its OOM kill count now. */
void oom_watch(pid_t init_pid)
{
	char file[64], buf[4096], dir[PATH_MAX - 32]; /* room for the file name */
	const char *v1 = NULL, *v2 = NULL;

	counter_path[0] = '\0';
	baseline = 0;
	snprintf(file, sizeof file, "/proc/%d/cgroup", (int)init_pid);
	if (read_small_file(AT_FDCWD, file, buf, sizeof buf) <= 0)
		return;
	/* Lines are "hierarchy:controllers:path"; v2's is "0::path". */
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		if (strcmp(line, "0:") == 0 && c1 + 1 == c2)
			v2 = c2 + 1;
		else if (has_token(c1 + 1, "memory"))
			v1 = c2 + 1;
	}
	if (v1 && mount_of("memory", v1, dir, sizeof dir))
		snprintf(counter_path, sizeof counter_path, "%s/memory.oom_control", dir);
	else if (v2 && mount_of(NULL, v2, dir, sizeof dir))
		snprintf(counter_path, sizeof counter_path, "%s/memory.events", dir);
	baseline = read_counter();
	if (baseline < 0) /* no counter there (no memory controller): OOM kills go unseen */
		counter_path[0] = '\0';
}

bool oom_happened(void)
{
	long long now = read_counter();

	return now >= 0 && now > baseline;
}
