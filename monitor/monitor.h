/* barque-monitor: declarations shared by its parts. README.md is the contract.
 *
 * main.c       command line, detaching from the caller, the overall sequence
 * lifecycle.c  create/start, the init's exit, restart policy and back-off
 * runtime.c    running the OCI runtime and reading its errors
 * io.c         the event loop: container output, attach and control clients, stdin
 * logfile.c    Docker's json-file log with rotation
 * cgroup.c     the memory cgroup's OOM kill counter
 * health.c     health checks: the runtime's exec on a timer, Docker's status rules
 * state.c      state.json
 * util.c       time stamps, JSON escaping, small file helpers
 * events.c     the engine's event log: a restart's die and start
 */
#ifndef BARQUE_MONITOR_H
#define BARQUE_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#define ERR_MAX 512      /* longest error kept: state.json's Error, the caller's stderr line */
#define TIME_MAX 40      /* "2026-12-01T21:27:53.123456789Z" and its NUL */
#define STREAM_BUF 16384 /* Docker's copier buffer: a longer line is logged in pieces */

enum restart_policy { RESTART_NO, RESTART_ALWAYS, RESTART_UNLESS_STOPPED, RESTART_ON_FAILURE };

struct options {
	const char *id, *bundle, *dir, *runtime, *runtime_root, *runtime_log, *log_file;
	long long log_max_size; /* 0: no limit */
	int log_max_files;
	bool tty, stdin_open, stdin_once, wait_attach;
	enum restart_policy restart;
	int restart_max; /* on-failure:N, 0 = unlimited */
	const char *exit_command; /* run once the container has stopped for good */
	char **exit_args;         /* its arguments (--exit-command-arg, in order) */
	int exit_argc;
	int64_t health_interval;  /* ms; 0: no health checks */
	int64_t health_timeout, health_start_period; /* ms */
	int health_retries;
	int *hold_fds;            /* --hold-fd: kept open for the monitor's life, never inherited */
	int hold_count;
	/* The engine's event log, for the die/start of restarts (events.c): the file, and the
	 * JSON the engine made of the container ("id","from","Type" members; the Actor object
	 * left open after its last attribute). */
	const char *events_log, *event_head, *event_actor;
};

/* What state.json says. */
struct cstate {
	const char *status; /* created, running, restarting, exited */
	pid_t pid;
	char started_at[TIME_MAX], finished_at[TIME_MAX];
	int exit_code;
	int last_exit; /* the last run's exit code: kept while the next run goes on */
	bool oom_killed;
	int restart_count;
	char error[ERR_MAX];
};

/* One output stream of the container and its not yet logged partial line. */
struct stream {
	const char *name;      /* "stdout" or "stderr", as the log names it */
	int id;                /* stdcopy stream number: 1 or 2 */
	size_t len;            /* bytes of buf not yet logged (the start of a line) */
	char ptime[TIME_MAX];  /* time of the first piece of a line logged in pieces, or "" */
	char buf[STREAM_BUF];
};

extern struct options opt;
extern struct cstate cs;
extern int dir_fd; /* --dir, where the monitor's files live */

/* util.c */
typedef void (*put_fn)(void *ctx, const char *p, size_t n);
void format_time(const struct timespec *ts, char *buf, size_t len);
void now_rfc3339(char *buf, size_t len);
int64_t mono_ms(void);
void json_escape(const unsigned char *s, size_t n, put_fn put, void *ctx);
size_t json_escaped_len(const unsigned char *s, size_t n);
int write_all(int fd, const void *p, size_t n);
int atomic_open(int dfd, const char *name, mode_t mode);
int atomic_commit(int dfd, const char *name, int fd, int rc);
ssize_t read_small_file(int dfd, const char *path, char *buf, size_t len);
int sock_path(struct sockaddr_un *sa, const char *name, bool for_others);
int listen_unix(const char *name, char *err, size_t errlen);
void close_from(int lowest);
void close_from_except(int lowest, const int *keep, int count);
bool stop_requested(void);

/* state.c */
int state_write(void);
void put_json_string(put_fn put, void *ctx, const char *s, size_t n);

/* health.c */
void ev_died(void);
void ev_started(void);
void ev_health(const char *status);

void health_started(void);
void health_stopped(void);
int64_t health_timeout_ms(void);
bool health_tick(void);
int health_fd(void);
void health_ready(void);
bool health_child_exited(pid_t pid, int status);
void health_json(put_fn put, void *ctx);

/* cgroup.c */
void oom_watch(pid_t init_pid);
bool oom_happened(void);

/* logfile.c */
int log_open(char *err, size_t errlen);
void log_data(struct stream *s, size_t n);
void log_end_of_stream(struct stream *s);

/* runtime.c */
struct rt_io {
	int in, out, err; /* the runtime's stdio (the init inherits it); -1: /dev/null */
	int capture;      /* read end of the pipe on its stderr, collected for errors; -1: none */
	int console;      /* listening console socket (--tty), -1: none */
};
int rt_create(const struct rt_io *io, bool and_start, int *master, char *err, size_t errlen);
void rt_delete(void);
pid_t rt_read_pid(void);
int start_failure_code(const char *err, int previous);
pid_t rt_exec_spawn(int out, off_t *log_from);
void rt_exec_error(off_t log_from, int status, const char *out, size_t n, char *err,
		   size_t errlen);

/* io.c */
int io_setup(char *err, size_t errlen);
void io_set_pipes(int out, int err, int in);
void io_set_master(int master);
void io_drain_output(int wait_ms);
void io_discard_output(void);
void io_end_of_stream(void);
void io_run(void);
void io_unlink_sockets(void);
void io_close_clients(void);
bool io_claimed(void);
bool io_handoff(void);

/* lifecycle.c */
int restart_parse(const char *s, enum restart_policy *policy, int *max);
int lc_set_restart(const char *s);
int lc_launch(char *err, size_t errlen);
void lc_launch_failed(const char *err);
void lc_child_exited(pid_t pid, int status);
void lc_first_attach(void);
int lc_timeout_ms(void);
bool lc_tick(void);
int lc_watch_fd(void);
void lc_watch_ready(void);
bool lc_done(void);
bool lc_init_exited(void);
void lc_delete_deferred(void);

#endif
