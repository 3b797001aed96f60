/* state.json: the container's state as the engine reads it, replaced atomically. */
#include "monitor.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The file is streamed through a small buffer: with health checks it holds up to five
 * outputs of 4 KiB, each up to six times that once escaped, which no fixed buffer should. */
struct writer {
	int fd, rc;
	size_t len;
	char buf[4096];
};

static void writer_put(void *ctx, const char *p, size_t n)
{
	struct writer *w = ctx;

	while (n > 0 && w->rc == 0) {
		size_t room = sizeof w->buf - w->len, k = n < room ? n : room;
		memcpy(w->buf + w->len, p, k);
		w->len += k;
		p += k;
		n -= k;
		if (w->len == sizeof w->buf) {
			w->rc = write_all(w->fd, w->buf, w->len);
			w->len = 0;
		}
	}
}

static void put_str(struct writer *w, const char *s)
{
	writer_put(w, s, strlen(s));
}

/* A JSON string as Go writes it (quotes included). */
void put_json_string(put_fn put, void *ctx, const char *s, size_t n)
{
	put(ctx, "\"", 1);
	json_escape((const unsigned char *)s, n, put, ctx);
	put(ctx, "\"", 1);
}

static void put_string(struct writer *w, const char *s)
{
	put_json_string(writer_put, w, s, strlen(s));
}

int state_write(void)
{
	struct writer w = {.fd = atomic_open(dir_fd, "state.json", 0644)};
	char num[160];

	if (w.fd < 0)
		return -1;
	put_str(&w, "{\"Status\": ");
	put_string(&w, cs.status);
	snprintf(num, sizeof num, ", \"Pid\": %d, \"MonitorPid\": %d, \"StartedAt\": ", (int)cs.pid,
		 (int)getpid());
	put_str(&w, num);
	put_string(&w, cs.started_at);
	put_str(&w, ", \"FinishedAt\": ");
	put_string(&w, cs.finished_at);
	snprintf(num, sizeof num,
		 ", \"ExitCode\": %d, \"LastExitCode\": %d, \"OOMKilled\": %s, \"RestartCount\": %d, ",
		 cs.exit_code, cs.last_exit, cs.oom_killed ? "true" : "false", cs.restart_count);
	put_str(&w, num);
	put_str(&w, "\"Error\": ");
	put_string(&w, cs.error);
	health_json(writer_put, &w); /* `, "Health": {…}` once checks have begun */
	put_str(&w, "}\n");
	if (w.rc == 0 && w.len > 0)
		w.rc = write_all(w.fd, w.buf, w.len);
	return atomic_commit(dir_fd, "state.json", w.fd, w.rc);
}
