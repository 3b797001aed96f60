/* state.json: the container's state as the engine reads it, replaced atomically. */
#include "monitor.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void put_string(struct sbuf *b, const char *s)
{
	sbuf_puts(b, "\"");
	json_escape((const unsigned char *)s, strlen(s), sbuf_put, b);
	sbuf_puts(b, "\"");
}

int state_write(void)
{
	/* Every field is bounded: Error's ERR_MAX bytes escape to at most 6 times that. */
	char buf[6 * ERR_MAX + 512], num[160];
	struct sbuf b = {buf, 0, sizeof buf};

	sbuf_puts(&b, "{\"Status\": ");
	put_string(&b, cs.status);
	snprintf(num, sizeof num, ", \"Pid\": %d, \"MonitorPid\": %d, \"StartedAt\": ", (int)cs.pid,
		 (int)getpid());
	sbuf_puts(&b, num);
	put_string(&b, cs.started_at);
	sbuf_puts(&b, ", \"FinishedAt\": ");
	put_string(&b, cs.finished_at);
	snprintf(num, sizeof num, ", \"ExitCode\": %d, \"OOMKilled\": %s, \"RestartCount\": %d, ",
		 cs.exit_code, cs.oom_killed ? "true" : "false", cs.restart_count);
	sbuf_puts(&b, num);
	sbuf_puts(&b, "\"Error\": ");
	put_string(&b, cs.error);
	sbuf_puts(&b, "}\n");
	return write_file_atomic(dir_fd, "state.json", buf, b.len, 0644);
}
