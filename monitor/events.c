/* The engine's event log (barque/engine/events.py) for what only the monitor sees: a restart
 * policy's `die`, health status changes, and every `start` (the first included: a run that
 * ends at once must not have its `die` logged before the engine could log its start). One
 * JSON line per event, appended with O_APPEND in one write, as the engine's own; the engine
 * rotates the file on its next write. Without --events-log (--event-head, --event-actor: the
 * engine's JSON of the container) nothing is logged; the engine always gives them, as a
 * restart policy may be set while the container runs. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* `die` for this run once: the marker the engine's died() makes for the same end (named for
 * FinishedAt, letters and digits only), so a `stop` during the back-off says it no more. */
static bool first_report(void)
{
	char name[TIME_MAX + 16] = ".died-";
	size_t n = strlen(name);
	int fd;

	for (const char *p = cs.finished_at; *p && n < sizeof name - 1; p++)
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			name[n++] = *p;
	name[n] = '\0';
	int dfd = open(opt.bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return true;
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	close(dfd);
	if (fd < 0)
		return errno != EEXIST;
	close(fd);
	return true;
}

static void log_event(const char *action, const char *extra)
{
	char line[16384];
	struct timespec ts;
	int n, fd;

	if (!opt.events_log || !opt.event_head || !opt.event_actor)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof line,
		     "{\"status\":\"%s\",%s,\"Action\":\"%s\",\"Actor\":%s%s}},\"scope\":\"local\","
		     "\"time\":%lld,\"timeNano\":%lld}\n",
		     action, opt.event_head, action, opt.event_actor, extra, (long long)ts.tv_sec,
		     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
	if (n <= 0 || (size_t)n >= sizeof line)
		return; /* labels too long for one line: no event rather than half of one */
	fd = open(opt.events_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	(void)write_all(fd, line, (size_t)n);
	close(fd);
}

void ev_died(void)
{
	char extra[64];

	if (!opt.events_log || !first_report())
		return;
	if (cs.oom_killed)
		log_event("oom", "");
	snprintf(extra, sizeof extra, ",\"exitCode\":\"%d\"", cs.exit_code);
	log_event("die", extra);
}

void ev_started(void)
{
	log_event("start", "");
}

void ev_health(const char *status)
{
	char action[64];

	snprintf(action, sizeof action, "health_status: %s", status);
	log_event(action, "");
}
