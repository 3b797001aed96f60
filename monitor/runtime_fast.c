/* barque-runtime-fast LAUNCHER [RUNTIME ARG...]: barque-runtime's `start` and `delete` in the
 * common case, without starting Python.
 *
 * containerd runs `create`, `start` and `delete` as three processes per container; Python's
 * start-up alone (~8 ms of CPU here) costs more than runc's whole `start` or `delete`. Both are
 * small once the container exists: `start` reads one byte from the exec fifo, `delete` of a
 * stopped container removes its cgroup directories and its state directory. The Python
 * runtime's `create` leaves what these need in the state directory's `fastpath` file:
 *
 *     pid PID
 *     start STARTTIME        (field 22 of /proc/PID/stat when the init was made)
 *     poststart 0|1          (the config has poststart hooks)
 *     poststop 0|1
 *     cgroup DIR             (one line per cgroup directory, every hierarchy's)
 *
 * Anything else — another command, a flag this file does not read, no fastpath file, hooks
 * to run, a container in another state, any error before the container is changed — runs
 * the Python runtime instead (LAUNCHER again, with BARQUE_RUNTIME_SLOW=1), which gives runc's
 * answer and words for it. So this file only ever does what the Python runtime would do.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ROOT "/run/barque-runtime" /* barque/runtime/state.py's DEFAULT_ROOT */
#define MAX_CGROUPS 32

static char **launcher_argv;

/* Run the Python runtime with the same arguments: every case this file does not handle. */
static void slow(void)
{
	extern char **environ;

	setenv("BARQUE_RUNTIME_SLOW", "1", 1);
	execve(launcher_argv[0], launcher_argv, environ);
	fprintf(stderr, "barque-runtime: cannot run %s: %s\n", launcher_argv[0], strerror(errno));
	_exit(1);
}

struct globals {
	const char *root, *log, *log_format;
	int log_fd;
};

/* The value of a global flag NAME (`--name V`, `--name=V`, `-name V`, `-name=V`), moving *i
 * past it; NULL when argv[*i] is not that flag. */
static const char *flag_value(char **argv, int argc, int *i, const char *name)
{
	const char *tok = argv[*i];
	tok += tok[1] == '-' ? 2 : 1;
	size_t n = strlen(name);
	if (strncmp(tok, name, n) != 0)
		return NULL;
	if (tok[n] == '=')
		return tok + n + 1;
	if (tok[n] != '\0' || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 1024 || !strcmp(id, ".") || !strcmp(id, ".."))
		return 0;
	for (const char *c = id; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr("_+-.", *c)))
			return 0;
	return 1;
}

/* runc's error report, as barque/runtime/log.py and cli.py write it: the log line (logrus's
 * text or JSON shape) when --log is given, and one line on stderr. */
static int fail(const struct globals *g, const char *msg)
{
	if (g->log_fd >= 0) {
		char stamp[32], line[512];
		time_t now = time(NULL);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
		int n = strcmp(g->log_format, "json") == 0
				? snprintf(line, sizeof line,
					   "{\"level\":\"error\",\"msg\":\"%s\",\"time\":\"%s\"}\n",
					   msg, stamp)
				: snprintf(line, sizeof line,
					   "time=\"%s\" level=error msg=\"%s\"\n", stamp, msg);
		if (write(g->log_fd, line, n) < 0) {
			/* the stderr line below still tells it */
		}
	}
	fprintf(stderr, "barque-runtime: %s\n", msg);
	return 1;
}

struct fastpath {
	long long pid, start;
	int poststart, poststop;
	int ncgroups;
	char cgroups[MAX_CGROUPS][4096];
};

/* The container's fastpath file, read; 0 when it is missing or not as create writes it. */
static int read_fastpath(int dirfd, struct fastpath *fp)
{
	int fd = openat(dirfd, "fastpath", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return 0;
	}
	memset(fp, 0, sizeof *fp);
	fp->pid = fp->start = -1;
	fp->poststart = fp->poststop = -1;
	char line[4200];
	int ok = 1;
	while (ok && fgets(line, sizeof line, f)) {
		size_t n = strlen(line);
		if (n == 0 || line[n - 1] != '\n') {
			ok = 0;
			break;
		}
		line[n - 1] = '\0';
		if (sscanf(line, "pid %lld", &fp->pid) == 1 || sscanf(line, "start %lld", &fp->start) == 1 ||
		    sscanf(line, "poststart %d", &fp->poststart) == 1 ||
		    sscanf(line, "poststop %d", &fp->poststop) == 1)
			continue;
		if (strncmp(line, "cgroup /", 8) == 0 && fp->ncgroups < MAX_CGROUPS &&
		    strlen(line + 7) < sizeof fp->cgroups[0]) {
			strcpy(fp->cgroups[fp->ncgroups++], line + 7);
			continue;
		}
		ok = 0;
	}
	fclose(f);
	return ok && fp->pid > 0 && fp->start >= 0 && fp->poststart >= 0 && fp->poststop >= 0;
}

/* Whether the init is still the process create made: alive, not a zombie, the same start. */
static int init_alive(const struct fastpath *fp)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%lld/stat", fp->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	p += 2; /* field 3, the state; the start time is field 22 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	return strtoll(p, NULL, 10) == fp->start;
}

/* `start ID`: let the created init exec the container's process. */
static int start(const struct globals *g, int dirfd, const struct fastpath *fp)
{
	if (fp->poststart || !init_alive(fp))
		slow(); /* hooks to run, or runc's "cannot start a container that has stopped" */
	int fd = openat(dirfd, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		slow(); /* started already: runc's words for a running or paused one */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	for (;;) {
		int ready = poll(&p, 1, 100);
		if (ready > 0)
			break;
		if ((ready < 0 && errno != EINTR) || !init_alive(fp)) {
			close(fd); /* nothing consumed yet */
			slow();
		}
	}
	char word = 0;
	ssize_t n = read(fd, &word, 1);
	close(fd);
	if (n != 1 || word != '0')
		return fail(g, "container init exited before the start signal");
	unlinkat(dirfd, "exec.fifo", 0);
	return 0;
}

/* Remove the state directory's entries (flat, but a directory in it goes too), then it. */
static int remove_tree_at(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT)
			rc = errno == EISDIR ? remove_tree_at(fd, e->d_name) : -1;
	}
	closedir(d);
	if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

/* `delete [--force] ID` of a stopped container: its cgroup directories, then its state. */
static int delete(const char *root, const char *id, const struct fastpath *fp)
{
	if (fp->poststop || init_alive(fp))
		slow(); /* hooks to run, or processes to kill first */
	for (int i = 0; i < fp->ncgroups; i++)
		/* EBUSY: processes left, or child cgroups: Python kills and removes them all */
		if (rmdir(fp->cgroups[i]) < 0 && errno != ENOENT)
			slow();
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || remove_tree_at(rootfd, id) < 0)
		slow(); /* Python tries again, and reports what stops it */
	close(rootfd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: barque-runtime-fast LAUNCHER [RUNTIME ARG...]\n", stderr);
		return 2;
	}
	/* As the Python runtime: no /proc/PID/exe or memory of ours for a container's processes
	 * that can see us (one without a PID namespace). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	launcher_argv = argv + 1;
	struct globals g = {.root = DEFAULT_ROOT, .log = NULL, .log_format = "text", .log_fd = -1};
	int i = 2;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *v;
		int at = i;
		if ((v = flag_value(argv, argc, &i, "root")))
			g.root = v;
		else if ((i = at, v = flag_value(argv, argc, &i, "log-format")))
			g.log_format = v;
		else if ((i = at, v = flag_value(argv, argc, &i, "log")))
			g.log = v;
		else
			slow(); /* --debug, --systemd-cgroup, --help, ... */
	}
	if (g.root[0] != '/' || (strcmp(g.log_format, "text") && strcmp(g.log_format, "json")))
		slow();
	char **rest = argv + i;
	int nrest = argc - i;
	const char *id = NULL;
	int is_start = 0;
	if (nrest == 2 && !strcmp(rest[0], "start")) {
		id = rest[1];
		is_start = 1;
	} else if (nrest >= 2 && nrest <= 3 && !strcmp(rest[0], "delete")) {
		for (int k = 1; k < nrest; k++) {
			if (!strcmp(rest[k], "--force") || !strcmp(rest[k], "-f") ||
			    !strcmp(rest[k], "-force"))
				continue;
			if (id || rest[k][0] == '-')
				slow();
			id = rest[k];
		}
	}
	if (!id || !valid_id(id))
		slow();
	if (g.log) {
		/* as the Python runtime does first: the log file exists once a command ran */
		g.log_fd = open(g.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (g.log_fd < 0)
			slow();
	}
	char dir[4096];
	if (snprintf(dir, sizeof dir, "%s/%s", g.root, id) >= (int)sizeof dir)
		slow();
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	static struct fastpath fp;
	if (dirfd < 0 || !read_fastpath(dirfd, &fp))
		slow();
	int rc = is_start ? start(&g, dirfd, &fp) : delete(g.root, id, &fp);
	close(dirfd);
	return rc;
}
