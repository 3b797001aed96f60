/* The container's life: create and start, the init's exit, the restart policy and Docker's
 * back-off between restarts. Health checks (health.c) run while it is running.
 *
 *   launch -> [created (--wait-attach: until the first client) ->] run -> running
 *          -> init exits -> delete -> restarting (back-off) -> run -> running ...
 *          -> exited (no restart, `stop` exists, or a restart failed)
 *
 * `run` is the runtime's `run --detach` (create and start at once).
 */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

enum phase { PH_LAUNCH, PH_WAITING, PH_RUNNING, PH_BACKOFF, PH_DONE };

static enum phase phase = PH_LAUNCH;
static pid_t init_pid = -1;
static int ct_in = -1, ct_out = -1, ct_err = -1; /* the container's ends of its stdio */
static int64_t started_ms;                       /* when this run started (monotonic) */
static int64_t backoff_ms;                       /* the last back-off, Docker's doubling */
static int64_t restart_at;                       /* when the back-off ends */
static int watch_fd = -1;                        /* inotify on --dir during the back-off */
static bool ours;             /* the runtime's container of this id is ours to delete */
static bool delete_pending;   /* the final delete waits until the claimant has its EOF */

/* Without a terminal the container's stdio are pipes kept for its whole life: restarts get
 * the same ones. stdin is /dev/null unless --stdin. */
static int setup_stdio(char *err, size_t len)
{
	int o[2], e[2], in[2] = {-1, -1};

	if (opt.tty)
		return 0;
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0 ||
	    (opt.stdin_open && pipe2(in, O_CLOEXEC) < 0)) {
		snprintf(err, len, "pipe: %s", strerror(errno));
		return -1;
	}
	/* Only our ends are non-blocking (each end is its own open file). */
	fcntl(o[0], F_SETFL, O_NONBLOCK);
	fcntl(e[0], F_SETFL, O_NONBLOCK);
	if (in[1] >= 0)
		fcntl(in[1], F_SETFL, O_NONBLOCK);
	ct_out = o[1];
	ct_err = e[1];
	ct_in = in[0];
	io_set_pipes(o[0], e[0], in[1]);
	return 0;
}

/* The runtime's `run --detach`. With --tty the runtime's own output goes to a pipe of ours
 * (the init's stdio is the pty); without, it shares the container's pipes, as the init
 * inherits them. Those are not read during the call: the container starts within it, and
 * what it writes is its output, for the log (the runtime's own error is read from its JSON
 * log). */
static int create_container(char *err, size_t len)
{
	struct rt_io io = {ct_in, ct_out, ct_err, -1, -1};
	int cap[2] = {-1, -1}, master = -1, rc;

	unlinkat(dir_fd, "init.pid", 0);
	if (opt.tty) {
		io.console = listen_unix("console.sock", err, len);
		if (io.console < 0)
			return -1;
		if (pipe2(cap, O_CLOEXEC | O_NONBLOCK) < 0) {
			snprintf(err, len, "pipe: %s", strerror(errno));
			close(io.console);
			return -1;
		}
		io = (struct rt_io){-1, cap[1], cap[1], cap[0], io.console};
	}
	/* A container the runtime already had under this id is not ours: a failed create
	 * must not delete it (runc's layout: ROOT/ID). */
	if (!ours) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", opt.runtime_root, opt.id);
		ours = access(path, F_OK) < 0 && errno == ENOENT;
	}
	rc = rt_create(&io, true, &master, err, len);
	if (opt.tty) { /* console.sock is used once */
		close(io.console);
		unlinkat(dir_fd, "console.sock", 0);
		close(cap[0]);
		close(cap[1]);
	}
	if (rc < 0)
		goto fail;
	init_pid = rt_read_pid();
	if (init_pid <= 0) {
		snprintf(err, len, "the OCI runtime wrote no pid to %s/init.pid", opt.dir);
		goto fail;
	}
	if (opt.tty) {
		if (master < 0) {
			snprintf(err, len, "the OCI runtime sent no terminal to the console socket");
			goto fail;
		}
		io_set_master(master);
	}
	oom_watch(init_pid);
	return 0;
fail:
	if (master >= 0)
		close(master);
	init_pid = -1;
	return -1;
}

static int start_container(char *err, size_t len)
{
	if (create_container(err, len) < 0)
		return -1;
	started_ms = mono_ms();
	now_rfc3339(cs.started_at, sizeof cs.started_at);
	/* As Docker's SetRunning: a new run has no exit code, OOM or error yet. */
	cs.status = "running";
	cs.pid = init_pid;
	cs.exit_code = 0;
	cs.oom_killed = false;
	cs.error[0] = '\0';
	phase = PH_RUNNING;
	health_started();
	state_write();
	ev_started();
	return 0;
}

int lc_launch(char *err, size_t len)
{
	if (setup_stdio(err, len) < 0)
		return -1;
	if (opt.wait_attach) {
		/* Nothing runs until the first client is there: its output cannot be missed. */
		cs.status = "created";
		phase = PH_WAITING;
		state_write();
		return 0;
	}
	return start_container(err, len);
}

static void finish(void)
{
	cs.status = "exited";
	cs.pid = 0;
	phase = PH_DONE;
}

/* A start that did not happen: the runtime's container goes, the error is recorded (unless
 * the engine is stopping the container: then the failure is its doing, not an error). */
static void start_failed(const char *err)
{
	bool stopping = stop_requested();

	rt_delete();
	init_pid = -1;
	io_discard_output();
	io_end_of_stream();
	if (!stopping) {
		snprintf(cs.error, sizeof cs.error, "%s", err);
		cs.exit_code = start_failure_code(err, cs.exit_code);
	}
	finish();
}

/* The launch failed: nothing of the container may stay, and the caller gets the error. */
void lc_launch_failed(const char *err)
{
	if (ours)
		rt_delete();
	init_pid = -1;
	io_end_of_stream();
	snprintf(cs.error, sizeof cs.error, "%s", err);
	cs.exit_code = start_failure_code(err, 0);
	finish();
}

/* --wait-attach: the first attach client is there, start. */
void lc_first_attach(void)
{
	char err[ERR_MAX];

	if (phase != PH_WAITING)
		return;
	if (start_container(err, sizeof err) < 0)
		start_failed(err);
}

/* A restart policy as --restart and the `restart-policy` request give it: no, always,
 * unless-stopped, on-failure[:N] (N: the most restarts, 0 = no limit). -1, and nothing
 * changed, for anything else. */
int restart_parse(const char *s, enum restart_policy *policy, int *max)
{
	enum restart_policy p;
	long long n = 0;

	if (strcmp(s, "no") == 0) {
		p = RESTART_NO;
	} else if (strcmp(s, "always") == 0) {
		p = RESTART_ALWAYS;
	} else if (strcmp(s, "unless-stopped") == 0) {
		p = RESTART_UNLESS_STOPPED;
	} else if (strncmp(s, "on-failure", 10) == 0 && (s[10] == '\0' || s[10] == ':')) {
		p = RESTART_ON_FAILURE;
		if (s[10] == ':') {
			char *end;

			if (s[11] < '0' || s[11] > '9')
				return -1;
			errno = 0;
			n = strtoll(s + 11, &end, 10);
			if (errno || *end || n > INT_MAX)
				return -1;
		}
	} else {
		return -1;
	}
	*policy = p;
	*max = (int)n;
	return 0;
}

/* `docker update --restart` of a running container (the `restart-policy` request): as
 * dockerd's restart manager after SetPolicy, the new policy decides at this run's end
 * (a restart already decided, during the back-off, still happens), and the restarts done
 * so far in this run of the monitor count against a new on-failure limit. */
int lc_set_restart(const char *s)
{
	return restart_parse(s, &opt.restart, &opt.restart_max);
}

static bool policy_restarts(void)
{
	if (stop_requested())
		return false;
	switch (opt.restart) {
	case RESTART_ALWAYS:
	case RESTART_UNLESS_STOPPED:
		return true;
	case RESTART_ON_FAILURE:
		return cs.exit_code != 0 &&
		       (opt.restart_max == 0 || cs.restart_count < opt.restart_max);
	case RESTART_NO:
		break;
	}
	return false;
}

static void stop_watch(void)
{
	if (watch_fd >= 0)
		close(watch_fd);
	watch_fd = -1;
}

/* Docker's restart manager: 100 ms, doubled after every restart, at most a minute, back to
 * 100 ms after a run of 10 s or more. RestartCount counts the restart from now on, as
 * Docker's does while it is `restarting`. */
static void begin_backoff(int64_t ran_ms)
{
	if (ran_ms >= 10000)
		backoff_ms = 0;
	backoff_ms = backoff_ms ? backoff_ms * 2 : 100;
	if (backoff_ms > 60000)
		backoff_ms = 60000;
	cs.restart_count++;
	cs.status = "restarting";
	phase = PH_BACKOFF;
	restart_at = mono_ms() + backoff_ms;
	/* inotify wakes us when `stop` appears; without it lc_timeout_ms polls for it */
	watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch_fd >= 0 && inotify_add_watch(watch_fd, opt.dir, IN_CREATE | IN_MOVED_TO) < 0)
		stop_watch();
	state_write();
}

/* `stop` appeared during the back-off: the restart is not done and not counted. */
static void cancel_restart(void)
{
	stop_watch();
	cs.restart_count--;
	finish();
}

static void restart_now(void)
{
	char err[ERR_MAX] = "";

	stop_watch();
	if (stop_requested()) {
		cancel_restart();
		return;
	}
	if (start_container(err, sizeof err) == 0)
		return;
	bool stopping = stop_requested(); /* the engine stopped it meanwhile: not a restart */
	start_failed(err);
	if (stopping)
		cs.restart_count--;
}

/* The init exited: what it left in the pipes is read, OOM checked before `delete` removes
 * the cgroup, then the policy decides. */
static void init_exited(int status)
{
	bool ran = phase == PH_RUNNING;
	int64_t ran_ms = mono_ms() - started_ms;

	health_stopped(); /* first: a check under way is no result of this run */
	cs.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	cs.last_exit = cs.exit_code;
	now_rfc3339(cs.finished_at, sizeof cs.finished_at);
	init_pid = -1;
	io_drain_output(0);
	cs.oom_killed = oom_happened();
	/* The end for good, with a claimant: the delete comes after the final state and the
	 * clients' EOF (main.c), so that the claimant's clean-up overlaps it. */
	delete_pending = io_claimed() && !(ran && policy_restarts());
	if (!delete_pending)
		rt_delete();
	io_drain_output(opt.tty ? 2000 : 0); /* what processes killed by delete wrote */
	io_end_of_stream();
	cs.pid = 0;
	if (!delete_pending && ran && policy_restarts()) {
		ev_died(); /* the engine reports the end for good (its exit command) */
		begin_backoff(ran_ms);
		/* As dockerd's: an attach stream is one run's (`docker run` and compose's log
		 * printer end with it, then wait); the state says `restarting` before the EOF. */
		io_close_clients();
	}
	else
		finish();
}

void lc_delete_deferred(void)
{
	if (delete_pending)
		rt_delete();
	delete_pending = false;
}

void lc_child_exited(pid_t pid, int status)
{
	if (health_child_exited(pid, status))
		return;
	if (pid == init_pid && phase == PH_RUNNING)
		init_exited(status);
}

/* How long the loop may sleep: until the back-off ends, or the next health check is due or
 * times out; -1: until something happens. */
int lc_timeout_ms(void)
{
	int64_t left = -1, health = health_timeout_ms();

	if (phase == PH_BACKOFF) {
		left = restart_at - mono_ms();
		if (left < 0)
			left = 0;
		if (watch_fd < 0 && left > 100)
			left = 100;
	}
	if (health >= 0 && (left < 0 || health < left))
		left = health;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* After every wake-up: the back-off ends with a restart, or early with `stop`; while running,
 * a health check begins or times out. Returns true if it did something (the loop then polls
 * afresh). */
bool lc_tick(void)
{
	if (phase != PH_BACKOFF)
		return health_tick();
	if (stop_requested()) {
		cancel_restart();
		return true;
	}
	if (mono_ms() < restart_at)
		return false;
	restart_now();
	return true;
}

int lc_watch_fd(void)
{
	return phase == PH_BACKOFF ? watch_fd : -1;
}

void lc_watch_ready(void)
{
	char buf[1024];

	while (read(watch_fd, buf, sizeof buf) > 0)
		; /* lc_tick looks for `stop` itself */
}

bool lc_done(void)
{
	return phase == PH_DONE;
}

/* The init is on its way out: the kernel sets PF_EXITING (flags, the 9th field of
 * /proc/PID/stat) as soon as it begins to exit, before it becomes a zombie. */
static bool init_exiting(void)
{
	char path[64], buf[512], *p;
	int field = 2; /* after "pid (comm" */

	snprintf(path, sizeof path, "/proc/%d/stat", (int)init_pid);
	if (read_small_file(AT_FDCWD, path, buf, sizeof buf) <= 0 || !(p = strrchr(buf, ')')))
		return false;
	while (p && field < 9) {
		p = strchr(p + 1, ' ');
		field++;
	}
	return p && (strtoul(p + 1, NULL, 10) & 0x4 /* PF_EXITING */);
}

/* The init has exited, or is exiting, but its exit is not handled yet (its SIGCHLD waits in
 * the loop): what a health check reports now is about a container that is gone. With a PID
 * namespace the kernel kills the check as the init exits and reports the init's exit only
 * once the check is reaped, so the check's exec may well end first. Asked without reaping. */
bool lc_init_exited(void)
{
	siginfo_t si = {0};

	if (phase != PH_RUNNING || init_pid <= 0)
		return true;
	if (waitid(P_PID, (id_t)init_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid)
		return true;
	return init_exiting();
}
