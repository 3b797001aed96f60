/* barque-monitor: the per-container monitor (Barque's conmon). See README.md.
 *
 * The command forks at once: the child becomes the monitor (new session, stdio on
 * /dev/null, child subreaper) and reports through a pipe whether the container started;
 * the parent waits for that word only and exits 0, or 1 with the error on stderr. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

struct options opt = {.log_max_files = 1, .restart = RESTART_NO};
struct cstate cs = {.status = "created"};
int dir_fd = -1;

static int report_fd = -1; /* the pipe to the waiting parent, until the launch is decided */
static volatile sig_atomic_t caller_died; /* the waiting parent died: nobody was told */

static void die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "barque-monitor: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static long long parse_number(const char *s, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		die_usage("invalid %s", what);
	return v;
}

/* A duration in milliseconds, at least min, at most what Go's time.Duration holds (the
 * engine's values come from one). */
static int64_t parse_ms(const char *s, const char *what, long long min)
{
	long long v = parse_number(s, what);

	if (v < min || v > INT64_MAX / 1000000)
		die_usage("invalid %s", what);
	return v;
}

static void parse_restart(const char *s)
{
	if (restart_parse(s, &opt.restart, &opt.restart_max) < 0)
		die_usage("invalid --restart policy: %s", s);
}

/* Paths are used after chdir("/"): make relative ones absolute. */
static const char *absolute(const char *path)
{
	char cwd[PATH_MAX], *abs;

	if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
		return path;
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		return path;
	return abs;
}

/* --hold-fd N: an open descriptor of the caller's (a socket holding a published host port)
 * that the monitor keeps until it ends. Close-on-exec: no child ever gets it. */
static void hold_fd(const char *s)
{
	long long fd = parse_number(s, "--hold-fd");
	int *grown;

	if (fd < 3 || fd > INT_MAX || fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0)
		die_usage("invalid --hold-fd %s: not an open descriptor above stdio", s);
	grown = realloc(opt.hold_fds, sizeof *grown * (size_t)(opt.hold_count + 1));
	if (!grown)
		die_usage("%s", "out of memory");
	opt.hold_fds = grown;
	opt.hold_fds[opt.hold_count++] = (int)fd;
}

/* The end: the held host ports are free again before the engine's clean-up runs. */
static void release_held(void)
{
	for (int i = 0; i < opt.hold_count; i++)
		close(opt.hold_fds[i]);
	opt.hold_count = 0;
}

static void parse_args(int argc, char **argv)
{
	enum { O_ID = 256, O_BUNDLE, O_DIR, O_RUNTIME, O_RROOT, O_RLOG, O_LOG, O_LMAX, O_LFILES,
	       O_TTY, O_STDIN, O_ONCE, O_RESTART, O_WAIT, O_EXIT, O_EXIT_ARG, O_HINTERVAL,
	       O_HTIMEOUT, O_HRETRIES, O_HSTART, O_HOLD, O_EVLOG, O_EVHEAD, O_EVACTOR };
	static const struct option longopts[] = {
		{"id", required_argument, 0, O_ID},
		{"bundle", required_argument, 0, O_BUNDLE},
		{"dir", required_argument, 0, O_DIR},
		{"runtime", required_argument, 0, O_RUNTIME},
		{"runtime-root", required_argument, 0, O_RROOT},
		{"runtime-log", required_argument, 0, O_RLOG},
		{"log-file", required_argument, 0, O_LOG},
		{"log-max-size", required_argument, 0, O_LMAX},
		{"log-max-files", required_argument, 0, O_LFILES},
		{"tty", no_argument, 0, O_TTY},
		{"stdin", no_argument, 0, O_STDIN},
		{"stdin-once", no_argument, 0, O_ONCE},
		{"restart", required_argument, 0, O_RESTART},
		{"wait-attach", no_argument, 0, O_WAIT},
		{"exit-command", required_argument, 0, O_EXIT},
		{"exit-command-arg", required_argument, 0, O_EXIT_ARG},
		{"health-interval", required_argument, 0, O_HINTERVAL},
		{"health-timeout", required_argument, 0, O_HTIMEOUT},
		{"health-retries", required_argument, 0, O_HRETRIES},
		{"health-start-period", required_argument, 0, O_HSTART},
		{"hold-fd", required_argument, 0, O_HOLD},
		{"events-log", required_argument, 0, O_EVLOG},
		{"event-head", required_argument, 0, O_EVHEAD},
		{"event-actor", required_argument, 0, O_EVACTOR},
		{0, 0, 0, 0},
	};
	unsigned health = 0; /* which --health-* options were given, one bit each */
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_ID: opt.id = optarg; break;
		case O_BUNDLE: opt.bundle = absolute(optarg); break;
		case O_DIR: opt.dir = absolute(optarg); break;
		case O_RUNTIME: opt.runtime = strchr(optarg, '/') ? absolute(optarg) : optarg; break;
		case O_RROOT: opt.runtime_root = absolute(optarg); break;
		case O_RLOG: opt.runtime_log = absolute(optarg); break;
		case O_LOG: opt.log_file = absolute(optarg); break;
		case O_LMAX: opt.log_max_size = parse_number(optarg, "--log-max-size"); break;
		case O_LFILES: {
			long long n = parse_number(optarg, "--log-max-files");
			if (n < 1 || n > 1000)
				die_usage("invalid %s", "--log-max-files");
			opt.log_max_files = (int)n;
			break;
		}
		case O_TTY: opt.tty = true; break;
		case O_STDIN: opt.stdin_open = true; break;
		case O_ONCE: opt.stdin_once = true; break;
		case O_RESTART: parse_restart(optarg); break;
		case O_WAIT: opt.wait_attach = true; break;
		case O_EXIT: opt.exit_command = absolute(optarg); break;
		case O_EVLOG: opt.events_log = absolute(optarg); break;
		case O_EVHEAD: opt.event_head = optarg; break;
		case O_EVACTOR: opt.event_actor = optarg; break;
		case O_EXIT_ARG: {
			char **grown = realloc(opt.exit_args, sizeof *grown * (size_t)(opt.exit_argc + 2));
			if (!grown)
				die_usage("%s", "out of memory");
			opt.exit_args = grown;
			opt.exit_args[opt.exit_argc++] = optarg;
			opt.exit_args[opt.exit_argc] = NULL;
			break;
		}
		case O_HINTERVAL: opt.health_interval = parse_ms(optarg, "--health-interval", 1); break;
		case O_HTIMEOUT: opt.health_timeout = parse_ms(optarg, "--health-timeout", 1); break;
		case O_HSTART:
			opt.health_start_period = parse_ms(optarg, "--health-start-period", 0);
			break;
		case O_HRETRIES: {
			long long n = parse_number(optarg, "--health-retries");
			if (n < 1 || n > INT_MAX)
				die_usage("invalid %s", "--health-retries");
			opt.health_retries = (int)n;
			break;
		}
		case O_HOLD: hold_fd(optarg); break;
		default: die_usage("unknown or incomplete option %s", argv[optind - 1]);
		}
		if (c >= O_HINTERVAL && c <= O_HSTART)
			health |= 1u << (c - O_HINTERVAL);
	}
	if (health != 0 && health != 0xf)
		die_usage("%s", "--health-interval, --health-timeout, --health-retries and "
			  "--health-start-period go together");
	if (optind < argc)
		die_usage("unexpected argument %s", argv[optind]);
	if (!opt.id || !*opt.id || !opt.bundle || !opt.dir || !opt.runtime || !opt.runtime_root)
		die_usage("%s", "--id, --bundle, --dir, --runtime and --runtime-root are required");
}

/* The parent: waits for the monitor's word on the launch, exits with it. */
static int wait_for_launch(int fd)
{
	char msg[ERR_MAX + 2];
	size_t got = 0;

	for (;;) {
		ssize_t r = read(fd, msg + got, sizeof msg - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	msg[got] = '\0';
	if (got > 0 && msg[0] == '0')
		return 0;
	if (got > 1)
		fprintf(stderr, "%s\n", msg + 1);
	else
		fprintf(stderr, "barque-monitor: the monitor died while starting the container\n");
	return 1;
}

/* 0 once the waiting parent has the news (SIGPIPE is ignored: a write to a parent that died
 * fails with EPIPE). */
static int report(const char *err)
{
	char msg[ERR_MAX + 2];
	int n = snprintf(msg, sizeof msg, "%c%s", err ? '1' : '0', err ? err : "");
	ssize_t w;

	if (report_fd < 0)
		return -1;
	w = write(report_fd, msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	close(report_fd);
	report_fd = -1;
	return w > 0 ? 0 : -1;
}

static void on_caller_death(int sig)
{
	(void)sig;
	caller_died = 1;
}

/* A launch whose caller died (it was told nothing, or it reported a failure) must not go on
 * alone: the parent's death is signalled to us until the launch is decided. */
static void watch_caller(pid_t parent)
{
	struct sigaction sa = {.sa_handler = on_caller_death, .sa_flags = SA_RESTART};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGUSR2);
	if (getppid() != parent)
		caller_died = 1;
}

/* The child becomes the monitor: nothing of the caller's is kept (its pipes see EOF as soon
 * as the parent exits), it outlives the caller's session, and orphans in the container's
 * process tree (its init first) become its children. */
static int detach(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
	int sigs[] = {SIGINT, SIGHUP, SIGPIPE, SIGTERM, SIGQUIT};

	if (null < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (dup2(null, i) < 0)
			return -1;
	if (null > 2)
		close(null);
	setsid();
	if (chdir("/") < 0)
		return -1;
	/* containers are stopped through the runtime, never by signalling the monitor */
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_IGN);
	return prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/* The engine's clean-up (unmount, --rm) once the container has stopped for good. Not waited
 * for: it outlives us, and its own outcome is none of the container's state. */
static void run_exit_command(void)
{
	char **argv;
	pid_t pid;

	if (!opt.exit_command)
		return;
	pid = fork();
	if (pid != 0)
		return;
	close_from(3); /* every fd of ours is close-on-exec; be sure, as for the runtime */
	argv = calloc((size_t)opt.exit_argc + 2, sizeof *argv);
	if (argv) {
		argv[0] = (char *)opt.exit_command;
		for (int i = 0; i < opt.exit_argc; i++)
			argv[i + 1] = opt.exit_args[i];
		execv(opt.exit_command, argv);
	}
	_exit(127);
}

static void fail(const char *err)
{
	lc_launch_failed(err);
	io_unlink_sockets();
	if (dir_fd >= 0)
		state_write();
	report(err);
	release_held();
	run_exit_command();
	exit(1);
}

int main(int argc, char **argv)
{
	char err[ERR_MAX];
	int sp[2];
	pid_t pid, launcher = getpid();

	parse_args(argc, argv);
	/* nothing inherited stays open, in us or in the container, but the held ports */
	close_from_except(3, opt.hold_fds, opt.hold_count);
	if (pipe2(sp, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "barque-monitor: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		close(sp[1]);
		return wait_for_launch(sp[0]);
	}
	close(sp[0]);
	report_fd = sp[1];
	watch_caller(launcher);
	if (detach() < 0) {
		snprintf(err, sizeof err, "cannot detach: %s", strerror(errno));
		report(err);
		return 1;
	}
	dir_fd = open(opt.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		snprintf(err, sizeof err, "cannot use %s: %s", opt.dir, strerror(errno));
		report(err);
		return 1;
	}
	if (io_setup(err, sizeof err) < 0 || log_open(err, sizeof err) < 0 ||
	    lc_launch(err, sizeof err) < 0)
		fail(err);
	prctl(PR_SET_PDEATHSIG, 0);
	if (caller_died || report(NULL) < 0)
		fail("the caller died while the container started");
	io_run();
	if (io_claimed()) {
		/* The end with a claimant (`claim-exit`): final state and EOF first, so that its
		 * clean-up runs while the runtime deletes the container; then it is told, and the
		 * exit command runs only if it goes away without `done`. */
		io_unlink_sockets();
		state_write();
		io_close_clients();
		lc_delete_deferred();
		release_held();
		if (!io_handoff())
			run_exit_command();
		return 0;
	}
	/* The end: the sockets' names go, then the final state, then clients see EOF (an
	 * attached client reads the exit code from state.json once it has its EOF). */
	lc_delete_deferred(); /* a safeguard: none is pending without a claimant */
	io_unlink_sockets();
	state_write();
	release_held();
	run_exit_command();
	io_close_clients();
	return 0;
}
