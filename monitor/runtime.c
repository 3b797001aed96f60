/* Running the OCI runtime (runc's command line) and turning its failures into one line:
 * the last error of its JSON log, else its stderr, else a description of how it ended. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 24

struct call {
	const char *argv[MAX_ARGS];
	int argc;
	char tail[1024]; /* the last bytes the runtime wrote on the captured stderr */
	size_t tail_len;
	int master;      /* the pty master received on the console socket, or -1 */
	int status;      /* its wait status */
};

static void call_init(struct call *c, const char *subcommand)
{
	c->argc = 0;
	c->tail_len = 0;
	c->master = -1;
	c->status = 0;
	c->argv[c->argc++] = opt.runtime;
	c->argv[c->argc++] = "--root";
	c->argv[c->argc++] = opt.runtime_root;
	if (opt.runtime_log) {
		c->argv[c->argc++] = "--log";
		c->argv[c->argc++] = opt.runtime_log;
		c->argv[c->argc++] = "--log-format";
		c->argv[c->argc++] = "json";
	}
	c->argv[c->argc++] = subcommand;
}

static void call_arg(struct call *c, const char *arg)
{
	if (c->argc < MAX_ARGS - 1)
		c->argv[c->argc++] = arg;
}

/* In the child: the runtime gets default signal handling, the given stdio and nothing else
 * (every descriptor of the monitor is close-on-exec, but the init inherits what the runtime
 * has, so be sure). */
static _Noreturn void exec_child(const struct call *c, const struct rt_io *io)
{
	int fds[3] = {io->in, io->out, io->err}, null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int sigs[] = {SIGINT, SIGHUP, SIGPIPE, SIGTERM, SIGQUIT, SIGCHLD};
	sigset_t all;

	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int i = 0; i < 3; i++) {
		int fd = fds[i] >= 0 ? fds[i] : null;
		if (fd == i)
			fcntl(fd, F_SETFD, 0);
		else if (fd < 0 || dup2(fd, i) < 0)
			_exit(127);
	}
	close_from(3);
	execvp(c->argv[0], (char *const *)c->argv);
	dprintf(2, "cannot run the OCI runtime %s: %s\n", c->argv[0], strerror(errno));
	_exit(127);
}

/* Keep the last sizeof tail bytes of what the runtime wrote to the capture pipe. */
static void collect(struct call *c, int fd)
{
	char buf[1024];
	ssize_t r;

	while ((r = read(fd, buf, sizeof buf)) > 0) {
		size_t n = (size_t)r, keep = sizeof c->tail - n;
		if (n >= sizeof c->tail) {
			memcpy(c->tail, buf + n - sizeof c->tail, sizeof c->tail);
			c->tail_len = sizeof c->tail;
			continue;
		}
		if (c->tail_len > keep) {
			memmove(c->tail, c->tail + c->tail_len - keep, keep);
			c->tail_len = keep;
		}
		memcpy(c->tail + c->tail_len, buf, n);
		c->tail_len += n;
	}
}

/* The pty master the runtime sends on the console socket (SCM_RIGHTS), if it has. */
static void accept_console(struct call *c, int listener)
{
	char data[256], ctrl[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = {data, sizeof data};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
			     .msg_controllen = sizeof ctrl};
	int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);

	if (conn < 0)
		return;
	if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) >= 0) {
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < n; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
				if (c->master < 0)
					c->master = fd;
				else
					close(fd);
			}
		}
	}
	close(conn);
}

/* Runs the runtime and waits for it, meanwhile collecting its stderr and accepting the
 * console socket (a pidfd makes its exit one more thing to poll). Returns its wait status. */
static int run(struct call *c, const struct rt_io *io)
{
	pid_t pid;
	int pidfd;

	c->argv[c->argc] = NULL;
	pid = fork();
	if (pid < 0) {
		c->status = -1;
		return -1;
	}
	if (pid == 0)
		exec_child(c, io);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	while (pidfd >= 0) {
		struct pollfd p[3] = {{pidfd, POLLIN, 0}, {io->capture, POLLIN, 0},
				      {io->console, POLLIN, 0}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			collect(c, io->capture);
		if (p[2].revents & POLLIN)
			accept_console(c, io->console);
		if (p[0].revents)
			break;
	}
	while (waitpid(pid, &c->status, 0) < 0 && errno == EINTR)
		;
	if (pidfd >= 0)
		close(pidfd);
	if (io->capture >= 0) /* non-blocking: whatever is left, without waiting for EOF */
		collect(c, io->capture);
	if (io->console >= 0) /* non-blocking listener: a connection that raced the exit */
		accept_console(c, io->console);
	return c->status;
}

/* The string value of a top-level key of a JSON object (one runtime log line), decoded;
 * false if the key is missing or not a string. Enough JSON for runc's log lines. */
static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

static void put_utf8(char *out, size_t len, size_t *o, unsigned cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	if (*o + n < len) {
		memcpy(out + *o, b, n);
		*o += n;
	}
}

/* Parses the JSON string at p (at its opening quote) into out; returns the position after
 * it, or NULL if it is malformed. out may be NULL to skip it. */
static const char *parse_string(const char *p, char *out, size_t len)
{
	size_t o = 0;

	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		unsigned cp = (unsigned char)*p++;
		if (cp == '\\') {
			char e = *p++;
			switch (e) {
			case 'n': cp = '\n'; break;
			case 't': cp = '\t'; break;
			case 'r': cp = '\r'; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'u': {
				char hex[5] = {0};
				for (int i = 0; i < 4; i++) {
					if (!*p)
						return NULL;
					hex[i] = *p++;
				}
				cp = (unsigned)strtoul(hex, NULL, 16);
				break;
			}
			case '\0': return NULL;
			default: cp = (unsigned char)e;
			}
			if (out)
				put_utf8(out, len, &o, cp);
			continue;
		}
		if (out && o + 1 < len)
			out[o++] = (char)cp;
	}
	if (out && len)
		out[o] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

/* Skips one JSON value that is not a string: a number, a literal, an object or array. */
static const char *skip_value(const char *p)
{
	int depth = 0;

	for (; *p; p++) {
		if (*p == '"') {
			p = parse_string(p, NULL, 0);
			if (!p)
				return NULL;
			p--;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (*p == ',' && depth == 0) {
			return p;
		}
	}
	return p;
}

static bool json_field(const char *line, const char *key, char *out, size_t len)
{
	char name[32];
	const char *p = skip_ws(line);

	if (*p++ != '{')
		return false;
	for (;;) {
		p = skip_ws(p);
		if (*p != '"')
			return false;
		p = parse_string(p, name, sizeof name);
		if (!p)
			return false;
		p = skip_ws(p);
		if (*p++ != ':')
			return false;
		p = skip_ws(p);
		if (strcmp(name, key) == 0)
			return *p == '"' && parse_string(p, out, len) != NULL;
		p = *p == '"' ? parse_string(p, NULL, 0) : skip_value(p);
		if (!p)
			return false;
		p = skip_ws(p);
		if (*p++ != ',')
			return false;
	}
}

/* The last error the runtime logged after offset `from` of its log (runc logs JSON lines
 * with "level" and "msg"); false if there is none. Only the last 32 KiB are read. */
static bool log_error_since(off_t from, char *err, size_t len)
{
	struct stat st;
	char level[16], msg[ERR_MAX], *buf;
	bool found = false;
	int fd;

	if (!opt.runtime_log || (fd = open(opt.runtime_log, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	if (fstat(fd, &st) < 0 || st.st_size <= from) {
		close(fd);
		return false;
	}
	if (st.st_size - from > 32768)
		from = st.st_size - 32768;
	size_t size = (size_t)(st.st_size - from);
	buf = malloc(size + 1);
	ssize_t got = buf ? pread(fd, buf, size, from) : -1;
	close(fd);
	if (got <= 0) {
		free(buf);
		return false;
	}
	buf[got] = '\0';
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!json_field(line, "level", level, sizeof level))
			continue;
		if (strcmp(level, "error") && strcmp(level, "fatal") && strcmp(level, "panic"))
			continue;
		if (json_field(line, "msg", msg, sizeof msg) && msg[0]) {
			snprintf(err, len, "%s", msg);
			found = true;
		}
	}
	free(buf);
	return found;
}

static off_t log_size_now(void)
{
	struct stat st;

	return opt.runtime_log && stat(opt.runtime_log, &st) == 0 ? st.st_size : 0;
}

/* The last non-empty line the runtime wrote on stderr. */
static bool last_stderr_line(struct call *c, char *err, size_t len)
{
	size_t end = c->tail_len, start;

	while (end > 0 && (c->tail[end - 1] == '\n' || c->tail[end - 1] == '\r' ||
			   c->tail[end - 1] == ' '))
		end--;
	if (end == 0)
		return false;
	for (start = end; start > 0 && c->tail[start - 1] != '\n'; start--)
		;
	snprintf(err, len, "%.*s", (int)(end - start), c->tail + start);
	return true;
}

static void describe_failure(struct call *c, const char *what, off_t log_from, char *err,
			     size_t len)
{
	if (log_error_since(log_from, err, len) || last_stderr_line(c, err, len))
		;
	else if (c->status < 0)
		snprintf(err, len, "cannot run the OCI runtime %s: %s", opt.runtime, strerror(errno));
	else if (WIFSIGNALED(c->status))
		snprintf(err, len, "OCI runtime %s was killed by signal %d", what,
			 WTERMSIG(c->status));
	else
		snprintf(err, len, "OCI runtime %s failed with exit status %d", what,
			 WEXITSTATUS(c->status));
	/* one line for the caller, whatever the runtime wrote */
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static bool succeeded(const struct call *c)
{
	return c->status >= 0 && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

int rt_create(const struct rt_io *io, bool and_start, int *master, char *err, size_t errlen)
{
	char pid_file[4096], console[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un sa;
	struct call c;
	off_t log_from = log_size_now();

	snprintf(pid_file, sizeof pid_file, "%s/init.pid", opt.dir);
	/* `run --detach` is create and start in one runtime process (one Python start fewer
	 * for barque-runtime, one Go start for runc), when nothing has to happen in between. */
	call_init(&c, and_start ? "run" : "create");
	if (and_start)
		call_arg(&c, "--detach");
	call_arg(&c, "--bundle");
	call_arg(&c, opt.bundle);
	call_arg(&c, "--pid-file");
	call_arg(&c, pid_file);
	if (io->console >= 0) {
		sock_path(&sa, "console.sock", true);
		memcpy(console, sa.sun_path, sizeof console);
		call_arg(&c, "--console-socket");
		call_arg(&c, console);
	}
	call_arg(&c, opt.id);
	run(&c, io);
	*master = c.master;
	if (succeeded(&c))
		return 0;
	describe_failure(&c, and_start ? "run" : "create", log_from, err, errlen);
	return -1;
}

/* `exec` of the health check (DIR/health.json), not waited for: the caller polls `out`
 * (its stdout and stderr; stdin is /dev/null) and gets its exit with the other children's.
 * It leads a process group of its own, which a timeout kills with the check's own group
 * (the check's process has a session of its own, as every process the runtime starts).
 * *log_from: where the runtime's log stood, for its error. */
pid_t rt_exec_spawn(int out, off_t *log_from)
{
	char process[4096], pid_file[4096];
	struct rt_io io = {-1, out, out, -1, -1};
	struct call c;
	pid_t pid;

	snprintf(process, sizeof process, "%s/health.json", opt.dir);
	snprintf(pid_file, sizeof pid_file, "%s/health.pid", opt.dir);
	call_init(&c, "exec");
	call_arg(&c, "--process");
	call_arg(&c, process);
	call_arg(&c, "--pid-file");
	call_arg(&c, pid_file);
	call_arg(&c, opt.id);
	c.argv[c.argc] = NULL;
	*log_from = log_size_now();
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		exec_child(&c, &io);
	}
	if (pid > 0)
		setpgid(pid, pid); /* both sides: the group exists before either goes on */
	return pid;
}

/* Why an `exec` that did not start the check failed, as for create and start: the runtime's
 * logged error, else the last line of what it wrote (out), else its exit status. */
void rt_exec_error(off_t log_from, int status, const char *out, size_t n, char *err,
		   size_t errlen)
{
	struct call c = {.status = status};

	if (n > sizeof c.tail) {
		out += n - sizeof c.tail;
		n = sizeof c.tail;
	}
	memcpy(c.tail, out, n);
	c.tail_len = n;
	describe_failure(&c, "exec", log_from, err, errlen);
}

/* `delete --force`: kills what is left of the container and removes its cgroup and state.
 * Best effort: a container the runtime does not know is already gone. */
void rt_delete(void)
{
	struct rt_io io = {-1, -1, -1, -1, -1};
	struct call c;

	call_init(&c, "delete");
	call_arg(&c, "--force");
	call_arg(&c, opt.id);
	run(&c, &io);
}

/* The init's pid from the pid file `create` wrote. */
pid_t rt_read_pid(void)
{
	char buf[32];
	long pid;

	if (read_small_file(dir_fd, "init.pid", buf, sizeof buf) <= 0)
		return -1;
	pid = strtol(buf, NULL, 10);
	return pid > 0 ? (pid_t)pid : -1;
}

/* ExitCode for a container that could not be started, as Docker sets it from the OCI
 * runtime's (lower-case) message: 127 when the command was not found, 126 when it could not
 * be run, else 128 unless it already exited with a code of its own. */
int start_failure_code(const char *err, int previous)
{
	if (strstr(err, "executable file not found") || strstr(err, "no such file or directory"))
		return 127;
	if (strstr(err, "permission denied") || strstr(err, "is a directory"))
		return 126;
	return previous ? previous : 128;
}
