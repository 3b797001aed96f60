/* Health checks: Docker's HEALTHCHECK, run by the monitor while the container runs.
 *
 *   start -> [interval] -> exec -> it exits, or the timeout kills it -> result, state.json
 *         -> [interval] -> exec -> ...            until the init exits: a check under way is
 *                                                 killed then and its result dropped
 *
 * Never waited for: the runtime's `exec` is a child like the others, its output a pipe that
 * io.c polls, its exit reported by lc_child_exited, its timer part of lifecycle.c's timeout.
 * One check at a time: the next one waits until the last exec has been reaped. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2) /* Linux 6.9 */
#endif

#define OUTPUT_MAX 4096 /* Docker's maxOutputLen: what a result keeps of the check's output */
#define LOG_MAX 5       /* Docker's maxLogEntries */
#define DRAIN_MAX (1024 * 1024) /* read at the exec's exit at most: a writer may outlive it */

enum hstatus { H_STARTING, H_HEALTHY, H_UNHEALTHY };
static const char *const status_names[] = {"starting", "healthy", "unhealthy"};

struct result {
	char start[TIME_MAX], end[TIME_MAX];
	int exit_code;
	char *output; /* malloc'd, just as long as it is; NULL when empty */
	size_t len;
};

/* What state.json says: from the first start on, kept across restarts and after the end. */
static bool begun;
static enum hstatus status;
static int streak;
static struct result results[LOG_MAX]; /* oldest first */
static int nresults;

/* This run of the container. */
static bool active;       /* it runs: checks are due */
static int64_t run_ms;    /* when it started (monotonic) */
static int64_t next_ms;   /* when the next check is due */

/* The check under way. exec_pid stays set until the exec is reaped, even once its result is
 * decided (timeout) or dropped: until then it may still write health.pid. */
static pid_t exec_pid = -1;
static bool pending;      /* its result is still to come */
static bool killed;       /* killed before its exec was reaped: look for its process again */
static int out_fd = -1;   /* our end of its output pipe */
static int64_t check_ms, deadline_ms;
static char check_start[TIME_MAX];
static off_t log_from;    /* the runtime's log before it: its error, if it fails */
static char out[OUTPUT_MAX];
static size_t out_len;
static bool truncated;    /* it wrote more than OUTPUT_MAX */

/* A duration as Go's time.Duration prints it, for whole milliseconds: 500ms, 1.5s, 30s,
 * 1m30s, 1h0m0s. */
static void go_duration(int64_t ms, char *buf, size_t len)
{
	long long s = (long long)(ms / 1000), h = s / 3600, m = s / 60 % 60;
	char frac[8] = "";

	if (ms == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (ms < 1000) {
		snprintf(buf, len, "%lldms", (long long)ms);
		return;
	}
	if (ms % 1000) {
		int n = snprintf(frac, sizeof frac, ".%03d", (int)(ms % 1000));
		while (frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	if (h)
		snprintf(buf, len, "%lldh%lldm%lld%ss", h, m, s % 60, frac);
	else if (m)
		snprintf(buf, len, "%lldm%lld%ss", m, s % 60, frac);
	else
		snprintf(buf, len, "%lld%ss", s, frac);
}

static void close_output(void)
{
	if (out_fd >= 0)
		close(out_fd);
	out_fd = -1;
}

/* One read of the check's output: the first OUTPUT_MAX bytes are kept, the rest read (the
 * check must not block on a full pipe) and dropped. Returns the read's result. */
static ssize_t read_output(void)
{
	char scratch[4096];
	bool keep = out_len < sizeof out;
	ssize_t r = keep ? read(out_fd, out + out_len, sizeof out - out_len)
			 : read(out_fd, scratch, sizeof scratch);

	if (r > 0 && keep)
		out_len += (size_t)r;
	else if (r > 0)
		truncated = true;
	return r;
}

/* The exec ended: what its check wrote is in the pipe already (bounded: something the check
 * left running may still hold the pipe and write). */
static void drain_output(void)
{
	size_t total = 0;
	ssize_t r;

	while (out_fd >= 0 && total < DRAIN_MAX) {
		r = read_output();
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		total += (size_t)r;
	}
	close_output();
}

/* Docker's rules (handleProbeResult): a success makes it healthy; a failure adds to the
 * streak, and at --health-retries makes it unhealthy, except that while it is still starting
 * failures of checks begun within the start period do not count. */
static void apply_result(int code)
{
	enum hstatus before = status;

	if (code == 0) {
		streak = 0;
		status = H_HEALTHY;
	} else if (!(status == H_STARTING && check_ms - run_ms < opt.health_start_period) &&
		   ++streak >= opt.health_retries) {
		status = H_UNHEALTHY;
	}
	if (status != before)
		ev_health(status_names[status]); /* Docker's health_status event: on a change */
}

/* A check's result: logged (the last LOG_MAX), applied, written; the next check is due an
 * interval from now. Dropped when the init has exited meanwhile (its exit is handled next):
 * a check cut short by the container's end says nothing of its health. */
static void record(int code, const char *output, size_t n, bool cut)
{
	struct result *r;

	if (lc_init_exited())
		return;
	if (nresults == LOG_MAX) {
		free(results[0].output);
		memmove(results, results + 1, sizeof results[0] * (LOG_MAX - 1));
		nresults--;
	}
	r = &results[nresults++];
	memcpy(r->start, check_start, sizeof r->start);
	now_rfc3339(r->end, sizeof r->end);
	r->exit_code = code;
	r->len = n + (cut ? 3 : 0);
	r->output = r->len ? malloc(r->len) : NULL;
	if (r->output) {
		memcpy(r->output, output, n);
		if (cut) /* as Docker's limitedBuffer says it lost data */
			memcpy(r->output + n, "...", 3);
	} else {
		r->len = 0;
	}
	apply_result(code);
	next_ms = mono_ms() + opt.health_interval;
	state_write();
}

static void record_error(const char *what)
{
	char msg[ERR_MAX];

	snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
	record(-1, msg, strlen(msg), false);
}

static void begin_check(void)
{
	int p[2];

	/* the pid file is the new exec's alone: an old pid must never be killed */
	unlinkat(dir_fd, "health.pid", 0);
	out_len = 0;
	truncated = false;
	check_ms = mono_ms();
	now_rfc3339(check_start, sizeof check_start);
	if (pipe2(p, O_CLOEXEC) < 0) {
		record_error("cannot run the health check: pipe");
		return;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK); /* only our end (each end is its own open file) */
	exec_pid = rt_exec_spawn(p[1], &log_from);
	if (exec_pid < 0) {
		record_error("cannot run the health check: fork");
		close(p[0]);
		close(p[1]);
		return;
	}
	close(p[1]);
	out_fd = p[0];
	pending = true;
	deadline_ms = check_ms + opt.health_timeout;
}

/* The check's process (health.pid) and its process group, if `parent` is its parent: the
 * exec while it runs, the monitor once the exec died (we are the subreaper). Any other
 * process that has the pid by now is not hit. The runtime started it in a session and
 * process group of its own (setsid, as runc does: it must not share the monitor's), so the
 * exec's group no longer holds it: Docker SIGKILLs the exec's process, and its group too
 * takes what the check started (as before, when it shared the exec's group). */
static void kill_check_process(pid_t parent)
{
	char buf[256], path[64], *paren;
	long pid;
	int pidfd;

	if (read_small_file(dir_fd, "health.pid", buf, sizeof buf) <= 0 ||
	    (pid = strtol(buf, NULL, 10)) <= 0)
		return;
	pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0)
		return;
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	/* "pid (comm) state ppid pgrp ...": comm may hold anything, the last ')' ends it */
	if (read_small_file(AT_FDCWD, path, buf, sizeof buf) > 0 && (paren = strrchr(buf, ')')) &&
	    strtol(paren + 3, NULL, 10) == (long)parent &&
	    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, PIDFD_SIGNAL_PROCESS_GROUP) < 0) {
		/* an older kernel: the group it led a moment ago, then the process itself */
		if (getpgid((pid_t)pid) == (pid_t)pid)
			kill(-(pid_t)pid, SIGKILL);
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	}
	close(pidfd);
}

/* The check (health.pid) first, then the exec and its process group (the runtime and its
 * helpers; a check that has not begun dies with them: the runtime writes health.pid before
 * it lets the check run). One that began just as the exec died (runc writes its pid file
 * after) is looked for again when the exec is reaped. The exec's result no longer counts. */
static void kill_check(void)
{
	kill_check_process(exec_pid);
	if (kill(-exec_pid, SIGKILL) < 0)
		kill(exec_pid, SIGKILL);
	pending = false;
	killed = true;
	close_output();
}

static void timed_out(void)
{
	char msg[80], d[40];

	kill_check();
	go_duration(opt.health_timeout, d, sizeof d);
	snprintf(msg, sizeof msg, "Health check exceeded timeout (%s)", d);
	record(-1, msg, strlen(msg), false);
}

/* The exec ended in time. Without health.pid the runtime never started the check: as
 * Docker does for an exec that fails, the runtime's error with exit code -1. */
static void finished(int wstatus)
{
	char err[ERR_MAX];
	int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);

	pending = false;
	drain_output();
	if (code != 0 && faccessat(dir_fd, "health.pid", F_OK, 0) < 0) {
		rt_exec_error(log_from, wstatus, out, out_len, err, sizeof err);
		record(-1, err, strlen(err), false);
		return;
	}
	record(code, out, out_len, truncated);
}

/* The container (re)started: Docker's initHealthMonitor, the log kept. */
void health_started(void)
{
	if (!opt.health_interval)
		return;
	begun = true;
	active = true;
	status = H_STARTING;
	streak = 0;
	run_ms = mono_ms();
	next_ms = run_ms + opt.health_interval;
}

/* The init exited: no more checks this run, and one under way is killed, its result
 * dropped. The health stays as it was. */
void health_stopped(void)
{
	active = false;
	if (pending)
		kill_check();
}

/* Milliseconds until health_tick has something to do; -1: nothing timed. */
int64_t health_timeout_ms(void)
{
	int64_t at, left;

	if (!active)
		return -1;
	if (pending)
		at = deadline_ms;
	else if (exec_pid > 0)
		return -1; /* the last exec is still to be reaped: its SIGCHLD wakes us */
	else
		at = next_ms;
	left = at - mono_ms();
	return left < 0 ? 0 : left;
}

/* After every wake-up: a check under way times out, or the next one begins. Returns true if
 * it did something (the descriptors to poll changed). */
bool health_tick(void)
{
	if (!active)
		return false;
	if (pending) {
		if (mono_ms() < deadline_ms)
			return false;
		timed_out();
		return true;
	}
	if (exec_pid > 0 || mono_ms() < next_ms || lc_init_exited())
		return false;
	begin_check();
	return true;
}

int health_fd(void)
{
	return out_fd;
}

void health_ready(void)
{
	ssize_t r = read_output();

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		close_output(); /* EOF: the exit comes next (or the timeout) */
}

/* A child was reaped: true if it was a check's exec. */
bool health_child_exited(pid_t pid, int wstatus)
{
	if (exec_pid <= 0 || pid != exec_pid)
		return false;
	if (pending)
		finished(wstatus);
	if (killed)
		kill_check_process(getpid());
	killed = false;
	exec_pid = -1;
	return true;
}

/* state.json's `, "Health": {...}`, once the container has started with health checks. */
#define PUTS(s) put(ctx, (s), strlen(s))
#define PUT_STRING(s) put_json_string(put, ctx, (s), strlen(s))

void health_json(put_fn put, void *ctx)
{
	char num[96];

	if (!begun)
		return;
	PUTS(", \"Health\": {\"Status\": ");
	PUT_STRING(status_names[status]);
	snprintf(num, sizeof num, ", \"FailingStreak\": %d, \"Log\": [", streak);
	PUTS(num);
	for (int i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		PUTS(i ? ", {\"Start\": " : "{\"Start\": ");
		PUT_STRING(r->start);
		PUTS(", \"End\": ");
		PUT_STRING(r->end);
		snprintf(num, sizeof num, ", \"ExitCode\": %d, \"Output\": ", r->exit_code);
		PUTS(num);
		put_json_string(put, ctx, r->output ? r->output : "", r->len);
		PUTS("}");
	}
	PUTS("]}");
}
