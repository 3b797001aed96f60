/* The event loop: one poll() over the container's output, its stdin, the attach and control
 * sockets and their clients, SIGCHLD (a signalfd) and what lifecycle.c waits for.
 *
 * The monitor never blocks on a client: output is sent without waiting, a client that
 * lags keeps at most PEND_MAX bytes queued (mapped only while it lags, on top of its
 * socket's own buffer) and is dropped beyond. Input from clients waits while the
 * container's stdin is full, so a container that does not read slows its writers down
 * instead of growing a buffer. */
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define MAX_CTL 8
#define PEND_MAX (1024 * 1024) /* per lagging client, mapped only while it lags */
#define CLIENT_SNDBUF (1024 * 1024) /* kernel buffering per client (capped by wmem_max) */

struct client {
	int fd;
	bool eof;    /* it half-closed: no more input from it */
	bool hup;    /* it is gone; only its unread input is left */
	char *pend;  /* output it has not taken yet (mmap'd while it lags) */
	size_t poff, plen; /* pend[poff .. poff+plen) is still to send */
};

struct ctl {
	int fd;
	size_t len;
	char line[128];
};

static struct client clients[MAX_CLIENTS];
static struct ctl ctls[MAX_CTL];
static int claimant = -1; /* the ctls[] entry that claimed the exit (`claim-exit`), or -1 */
static int attach_l = -1, ctl_l = -1, sig_fd = -1;
static bool attached_once;

static struct stream out_s, err_s; /* in .bss: their buffers cost nothing until used */
static int out_fd = -1, err_fd = -1; /* the monitor's ends of the output pipes */
static int master = -1;              /* --tty: the pty master, output and input */
static bool master_hup;              /* the pty has no slave left: stop polling it */
static struct winsize winsz;         /* last `resize`, applied to every new pty */
static bool have_winsz;

/* The container's stdin: data from clients waits here until the container takes it. */
static int in_fd = -1;          /* pipe's write end, or the master; -1: none or closed */
static bool in_closed;          /* closed for good (close-stdin, --stdin-once) */
static bool in_close_pending;   /* close once the buffer is written */
static int in_owner = -1;       /* --stdin-once: the client whose EOF closes stdin */
static char in_buf[4096];
static size_t in_len, in_off;
static unsigned char in_last = '\n';

int io_setup(char *err, size_t errlen)
{
	sigset_t set;

	out_s.name = "stdout";
	out_s.id = 1;
	err_s.name = "stderr";
	err_s.id = 2;
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	for (int i = 0; i < MAX_CTL; i++)
		ctls[i].fd = -1;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	attach_l = listen_unix("attach.sock", err, errlen);
	if (attach_l < 0)
		return -1;
	ctl_l = listen_unix("ctl.sock", err, errlen);
	return ctl_l < 0 ? -1 : 0;
}

void io_set_pipes(int out, int errp, int in)
{
	out_fd = out;
	err_fd = errp;
	in_fd = in;
}

static void stdin_close_now(void);

static void apply_winsz(void)
{
	if (master >= 0 && have_winsz)
		ioctl(master, TIOCSWINSZ, &winsz);
}

/* A new container run's pty (every `create` makes one). */
void io_set_master(int fd)
{
	master = fd;
	master_hup = false;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (opt.stdin_open && !in_closed)
		in_fd = fd;
	apply_winsz();
	stdin_close_now(); /* a close asked for between runs */
}

/* ---- clients ---- */

static void drop_client(int i)
{
	struct client *c = &clients[i];

	close(c->fd);
	if (c->pend)
		munmap(c->pend, PEND_MAX);
	*c = (struct client){.fd = -1};
	if (in_owner == i) {
		in_owner = -1;
		/* --stdin-once: the client that fed stdin detached; Docker closes stdin then */
		if (opt.stdin_once) {
			in_close_pending = true;
			stdin_close_now();
		}
	}
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Sends one chunk without waiting; what does not fit now is queued, up to PEND_MAX. */
static void client_send(int i, const struct iovec *iov, int cnt)
{
	struct client *c = &clients[i];
	size_t total = iov_total(iov, cnt), sent = 0;

	if (c->plen == 0) {
		struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};
		ssize_t r = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			drop_client(i);
			return;
		}
		sent = r > 0 ? (size_t)r : 0;
		if (sent == total)
			return;
	}
	if (c->plen + (total - sent) > PEND_MAX) { /* it does not keep up: let it go */
		drop_client(i);
		return;
	}
	if (!c->pend) {
		void *p = mmap(NULL, PEND_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED) {
			drop_client(i);
			return;
		}
		c->pend = p;
		c->poff = 0;
	}
	if (c->poff + c->plen + (total - sent) > PEND_MAX) { /* room is at the front */
		memmove(c->pend, c->pend + c->poff, c->plen);
		c->poff = 0;
	}
	for (int k = 0; k < cnt; k++) {
		size_t len = iov[k].iov_len;
		const char *base = iov[k].iov_base;
		if (sent >= len) {
			sent -= len;
			continue;
		}
		memcpy(c->pend + c->poff + c->plen, base + sent, len - sent);
		c->plen += len - sent;
		sent = 0;
	}
}

static void client_flush(int i)
{
	struct client *c = &clients[i];
	ssize_t r = send(c->fd, c->pend + c->poff, c->plen, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			drop_client(i);
		return;
	}
	c->poff += (size_t)r;
	c->plen -= (size_t)r;
	if (c->plen == 0) { /* caught up: give the memory back */
		munmap(c->pend, PEND_MAX);
		c->pend = NULL;
	}
}

/* Every client gets every chunk: stdcopy-framed without a terminal, raw with one. */
static void broadcast(int stream, const char *data, size_t n)
{
	unsigned char hdr[8] = {(unsigned char)stream, 0, 0, 0, (unsigned char)(n >> 24),
				(unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
	struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, n}};

	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0 && !clients[i].hup)
			client_send(i, opt.tty ? iov + 1 : iov, opt.tty ? 1 : 2);
}

/* ---- the container's stdin ---- */

static bool stdin_accepting(void)
{
	return opt.stdin_open && in_fd >= 0 && !in_closed && !in_close_pending;
}

/* Closes stdin once what clients wrote has gone in. A pipe is closed; a pty cannot be
 * without hanging up the terminal, so it gets the terminal's EOF character instead (twice
 * after a partial line: the first only ends that line), as typing ^D would. */
static void stdin_close_now(void)
{
	if (!in_close_pending || in_len > 0)
		return;
	in_close_pending = false;
	if (in_closed)
		return;
	in_closed = true;
	if (!opt.stdin_open || in_fd < 0)
		return;
	if (opt.tty) {
		struct termios t;
		char eof = tcgetattr(in_fd, &t) == 0 && t.c_cc[VEOF] ? (char)t.c_cc[VEOF] : 4;
		in_buf[in_len++] = eof;
		if (in_last != '\n')
			in_buf[in_len++] = eof;
		in_off = 0;
		return; /* written by the loop; in_fd stays the master */
	}
	close(in_fd);
	in_fd = -1;
}

static void stdin_write(void)
{
	ssize_t r = write(in_fd, in_buf + in_off, in_len - in_off);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r < 0) { /* the container's stdin is gone: drop what was meant for it */
		in_len = in_off = 0;
	} else {
		in_off += (size_t)r;
		if (in_off < in_len)
			return;
		in_len = in_off = 0;
	}
	if (opt.tty && in_closed && in_fd >= 0 && in_len == 0)
		in_fd = -1; /* the EOF characters are in: nothing more goes to the pty */
	stdin_close_now();
}

/* Input from a client: into the stdin buffer, or dropped when stdin is not open. A
 * half-close by the client whose input stdin takes (--stdin-once) closes stdin. */
static void client_read(int i)
{
	struct client *c = &clients[i];
	char scratch[1024];
	bool feed = stdin_accepting();
	char *dst = feed ? in_buf + in_len : scratch;
	size_t room = feed ? sizeof in_buf - in_len : sizeof scratch;
	ssize_t r = read(c->fd, dst, room);

	if (r > 0) {
		if (feed) {
			in_len += (size_t)r;
			in_last = (unsigned char)dst[r - 1];
			if (in_owner < 0)
				in_owner = i;
		}
		return;
	}
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r < 0) {
		drop_client(i);
		return;
	}
	c->eof = true;
	/* A half-close (not a client that simply went away) by the stdin client, or by a first
	 * client that sent nothing (`run -i` with empty input), ends stdin. */
	if (opt.stdin_once && (in_owner == i || (in_owner < 0 && !c->hup))) {
		in_owner = -1;
		in_close_pending = true;
		stdin_close_now();
	}
	if (c->hup)
		drop_client(i);
}

/* Every connection queued on the listener; false once none is left. */
static bool accept_one(void)
{
	int fd = accept4(attach_l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int i;

	if (fd < 0)
		return errno == EINTR || errno == ECONNABORTED;
	for (i = 0; i < MAX_CLIENTS && clients[i].fd >= 0; i++)
		;
	if (i == MAX_CLIENTS) {
		close(fd);
		return true;
	}
	/* Slack for bursts before a client counts as lagging; kernel memory, used only then. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){CLIENT_SNDBUF}, sizeof(int));
	clients[i] = (struct client){.fd = fd};
	return true;
}

static void accept_client(void)
{
	while (accept_one())
		;
	if (!attached_once) {
		attached_once = true;
		lc_first_attach(); /* --wait-attach: start now */
		/* Clients that came during the start (a client attaching stdin, stdout and stderr
		 * apart, as dockerpty does) are taken before any output is read: none of it is
		 * theirs to miss. */
		while (accept_one())
			;
	}
}

/* ---- control clients ---- */

static void ctl_reply(int fd, const char *text)
{
	(void)!send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void ctl_close(int i)
{
	close(ctls[i].fd);
	ctls[i].fd = -1;
	if (claimant == i)
		claimant = -1; /* the claimant went away (killed?): the exit command will run */
}

static void ctl_request(int i, char *line)
{
	int fd = ctls[i].fd;
	unsigned rows, cols;
	char extra, reply[160];
	size_t n = strlen(line);

	if (n && line[n - 1] == '\r')
		line[n - 1] = '\0';
	if (sscanf(line, "resize %u %u %c", &rows, &cols, &extra) == 2 && rows <= 65535 &&
	    cols <= 65535) {
		if (!opt.tty) {
			ctl_reply(fd, "error the container has no terminal\n");
			return;
		}
		winsz = (struct winsize){.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
		have_winsz = true;
		if (master >= 0 && ioctl(master, TIOCSWINSZ, &winsz) < 0) {
			snprintf(reply, sizeof reply, "error resize: %s\n", strerror(errno));
			ctl_reply(fd, reply);
			return;
		}
		ctl_reply(fd, "ok\n"); /* without a pty now (restarting): applied to the next one */
	} else if (strcmp(line, "close-stdin") == 0) {
		in_close_pending = true;
		in_owner = -1;
		stdin_close_now();
		ctl_reply(fd, "ok\n");
	} else if (strcmp(line, "claim-exit") == 0) {
		if (claimant >= 0) {
			ctl_reply(fd, "error the exit is claimed already\n");
			return;
		}
		claimant = i; /* for as long as this connection stays open */
		ctl_reply(fd, "ok\n");
	} else if (strncmp(line, "restart-policy ", 15) == 0) {
		if (lc_set_restart(line + 15) < 0) {
			snprintf(reply, sizeof reply, "error invalid restart policy: %.100s\n",
				 line + 15);
			ctl_reply(fd, reply);
			return;
		}
		ctl_reply(fd, "ok\n");
	} else if (strcmp(line, "done") == 0) {
		ctl_reply(fd, "error the container has not ended\n");
	} else {
		snprintf(reply, sizeof reply, "error unknown request: %.100s\n", line);
		ctl_reply(fd, reply);
	}
}

static void ctl_read(int i)
{
	struct ctl *c = &ctls[i];
	ssize_t r = read(c->fd, c->line + c->len, sizeof c->line - 1 - c->len);
	char *nl;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		ctl_close(i);
		return;
	}
	c->len += (size_t)r;
	c->line[c->len] = '\0';
	while ((nl = memchr(c->line, '\n', c->len))) {
		*nl = '\0';
		ctl_request(i, c->line);
		c->len -= (size_t)(nl + 1 - c->line);
		memmove(c->line, nl + 1, c->len);
		c->line[c->len] = '\0';
	}
	if (c->len == sizeof c->line - 1) {
		ctl_reply(c->fd, "error request too long\n");
		ctl_close(i);
	}
}

static void accept_ctl(void)
{
	int fd = accept4(ctl_l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int i;

	if (fd < 0)
		return;
	for (i = 0; i < MAX_CTL && ctls[i].fd >= 0; i++)
		;
	if (i == MAX_CTL) {
		ctl_reply(fd, "error too many control connections\n");
		close(fd);
		return;
	}
	ctls[i] = (struct ctl){.fd = fd};
}

/* ---- container output ---- */

/* One read from a stream's source, to the clients and the log; the read's result. */
static ssize_t stream_read(struct stream *s, int fd)
{
	ssize_t r = read(fd, s->buf + s->len, sizeof s->buf - s->len);

	if (r > 0) {
		broadcast(s->id, s->buf + s->len, (size_t)r);
		log_data(s, (size_t)r);
	}
	return r;
}

/* Reads what the container left in its pipes (and pty). A pty passes data on
 * asynchronously, so with one the wait goes on until it reports its slave gone (EIO), for
 * at most wait_ms. Bounded in bytes too: what the init wrote fits in a pipe's buffer, and a
 * writer that outlived it (no PID namespace) must not keep us here. */
#define DRAIN_MAX (1024 * 1024)

static void drain_pipe(struct stream *s, int fd)
{
	ssize_t r, total = 0;

	while (fd >= 0 && total < DRAIN_MAX && (r = stream_read(s, fd)) > 0)
		total += r;
}

void io_drain_output(int wait_ms)
{
	int64_t deadline = mono_ms() + wait_ms;
	ssize_t total = 0;

	drain_pipe(&out_s, out_fd);
	drain_pipe(&err_s, err_fd);
	while (master >= 0 && total < DRAIN_MAX) {
		ssize_t r = stream_read(&out_s, master);
		if (r > 0) {
			total += r;
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EINTR))
			break;
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		struct pollfd p = {master, POLLIN, 0};
		poll(&p, 1, (int)left);
	}
}

/* Drops what a start that failed left in the pipes: without a terminal the runtime shares
 * them with the init it could not start, so its own error is there (runc's too), which the
 * caller reports in its own words. Docker never shows it: containerd's shim copies a
 * container's output only once the runtime's create has succeeded. The previous run's
 * output was read when it ended. */
void io_discard_output(void)
{
	int fds[2] = {out_fd, err_fd};
	char buf[4096];

	for (int i = 0; i < 2; i++) {
		ssize_t r, total = 0;
		while (fds[i] >= 0 && total < DRAIN_MAX &&
		       (r = read(fds[i], buf, sizeof buf)) > 0)
			total += r;
	}
}

/* This run's output ended: partial lines go to the log, the run's pty is closed. */
void io_end_of_stream(void)
{
	log_end_of_stream(&out_s);
	log_end_of_stream(&err_s);
	if (master >= 0) {
		if (in_fd == master)
			in_fd = -1;
		close(master);
		master = -1;
		in_len = in_off = 0; /* input for the old terminal is lost, as with any hangup */
	}
}

/* ---- the loop ---- */

enum kind {
	K_SIG, K_OUT, K_ERR, K_MASTER, K_STDIN, K_ATTACH_L, K_CTL_L, K_CLIENT, K_CTL, K_WATCH,
	K_HEALTH
};

#define MAX_POLL (MAX_CLIENTS + MAX_CTL + 9) /* and one of each other kind */

static void reap(void)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	while (read(sig_fd, &si, sizeof si) > 0)
		;
	/* Every child: the init, and orphans the runtime leaves us as subreaper. */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		lc_child_exited(pid, status);
}

static short client_events(const struct client *c)
{
	bool feed = stdin_accepting();
	short ev = c->plen ? POLLOUT : 0;

	if (!c->eof && (!feed || in_len == 0))
		ev |= POLLIN;
	return ev;
}

static void client_ready(int i, short rev)
{
	struct client *c = &clients[i];

	if (rev & POLLERR) {
		drop_client(i);
		return;
	}
	if (rev & POLLHUP) {
		/* gone: only input it left unread still matters, and only when stdin takes it */
		c->hup = true;
		if (c->eof || !stdin_accepting()) {
			drop_client(i);
			return;
		}
	}
	if ((rev & POLLOUT) && c->plen)
		client_flush(i);
	if (c->fd >= 0 && (rev & (POLLIN | POLLHUP)) && (!stdin_accepting() || in_len == 0))
		client_read(i);
}

void io_run(void)
{
	struct pollfd p[MAX_POLL];
	int kind[MAX_POLL], idx[MAX_POLL];

	while (!lc_done()) {
		int n = 0;
#define ADD(f, ev, k, i) (p[n] = (struct pollfd){(f), (ev), 0}, kind[n] = (k), idx[n++] = (i))
		ADD(sig_fd, POLLIN, K_SIG, 0);
		if (out_fd >= 0)
			ADD(out_fd, POLLIN, K_OUT, 0);
		if (err_fd >= 0)
			ADD(err_fd, POLLIN, K_ERR, 0);
		if (master >= 0 && !master_hup)
			ADD(master, POLLIN, K_MASTER, 0);
		if (in_fd >= 0 && in_len > in_off)
			ADD(in_fd, POLLOUT, K_STDIN, 0);
		ADD(attach_l, POLLIN, K_ATTACH_L, 0);
		ADD(ctl_l, POLLIN, K_CTL_L, 0);
		if (lc_watch_fd() >= 0)
			ADD(lc_watch_fd(), POLLIN, K_WATCH, 0);
		if (health_fd() >= 0)
			ADD(health_fd(), POLLIN, K_HEALTH, 0);
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = &clients[i];
			/* a gone client waiting for room in stdin: not polled, it would spin */
			if (c->fd >= 0 && !(c->hup && stdin_accepting() && in_len > 0))
				ADD(c->fd, client_events(c), K_CLIENT, i);
		}
		for (int i = 0; i < MAX_CTL; i++)
			if (ctls[i].fd >= 0)
				ADD(ctls[i].fd, POLLIN, K_CTL, i);
#undef ADD
		if (poll(p, (nfds_t)n, lc_timeout_ms()) < 0 && errno != EINTR)
			break;
		if (lc_tick())
			continue; /* a restart or a check: the descriptors polled may have changed */
		for (int k = 0; k < n && !lc_done(); k++) {
			short rev = p[k].revents;
			if (!rev)
				continue;
			switch (kind[k]) {
			case K_SIG:
				reap();
				k = n; /* the container may be gone and its descriptors with it */
				break;
			case K_OUT:
				stream_read(&out_s, out_fd);
				break;
			case K_ERR:
				stream_read(&err_s, err_fd);
				break;
			case K_MASTER:
				if (master >= 0 && stream_read(&out_s, master) < 0 && errno != EAGAIN &&
				    errno != EINTR)
					master_hup = true; /* EIO: no slave left; the exit comes next */
				break;
			case K_STDIN:
				if (in_fd == p[k].fd && in_len > in_off)
					stdin_write();
				break;
			case K_ATTACH_L:
				accept_client();
				k = n; /* a start may have changed the descriptors */
				break;
			case K_CTL_L:
				accept_ctl();
				break;
			case K_WATCH:
				lc_watch_ready();
				break;
			case K_HEALTH:
				if (health_fd() == p[k].fd)
					health_ready();
				break;
			case K_CLIENT:
				if (clients[idx[k]].fd == p[k].fd)
					client_ready(idx[k], rev);
				break;
			case K_CTL:
				if (ctls[idx[k]].fd == p[k].fd)
					ctl_read(idx[k]);
				break;
			}
		}
	}
}

/* The end, first step: no new attach or control connection, and the names are gone before
 * the final state is written (a new monitor may then bind them again). */
void io_unlink_sockets(void)
{
	if (attach_l >= 0)
		close(attach_l);
	if (ctl_l >= 0)
		close(ctl_l);
	attach_l = ctl_l = -1;
	unlinkat(dir_fd, "attach.sock", 0);
	unlinkat(dir_fd, "ctl.sock", 0);
	for (int i = 0; i < MAX_CTL; i++)
		if (ctls[i].fd >= 0 && i != claimant)
			ctl_close(i);
}

bool io_claimed(void)
{
	return claimant >= 0;
}

/* Reaps what ends meanwhile (orphans the runtime's delete left us as subreaper). */
static void reap_quietly(void)
{
	struct signalfd_siginfo si;

	while (read(sig_fd, &si, sizeof si) > 0)
		;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* The end with a claimant (the container is deleted, its state final): `deleted` tells it
 * the runtime is done; true once it answers `done` (it cleaned up: no exit command), false
 * if it goes away without (the exit command runs, as without a claim). No time limit: the
 * claimant's end is its answer, and its clean-up may wait for a lock. */
bool io_handoff(void)
{
	struct ctl *c;
	char *nl;

	if (claimant < 0)
		return false;
	c = &ctls[claimant];
	if (send(c->fd, "deleted\n", 8, MSG_DONTWAIT | MSG_NOSIGNAL) != 8) {
		ctl_close(claimant);
		return false;
	}
	for (;;) {
		while ((nl = memchr(c->line, '\n', c->len))) {
			bool done;
			*nl = '\0';
			done = strcmp(c->line, "done") == 0 || strcmp(c->line, "done\r") == 0;
			c->len -= (size_t)(nl + 1 - c->line);
			memmove(c->line, nl + 1, c->len);
			if (done) {
				ctl_close(claimant);
				return true;
			}
		}
		if (c->len == sizeof c->line - 1)
			break; /* a line too long: not `done` */
		struct pollfd p[2] = {{c->fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			reap_quietly();
		if (!p[0].revents)
			continue;
		ssize_t r = read(c->fd, c->line + c->len, sizeof c->line - 1 - c->len);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			break;
		c->len += (size_t)r;
	}
	ctl_close(claimant);
	return false;
}

/* The end, last step: clients get what is queued for them (for a moment at most), then EOF. */
void io_close_clients(void)
{
	int64_t deadline = mono_ms() + 2000;

	for (;;) {
		struct pollfd p[MAX_CLIENTS];
		int n = 0, who[MAX_CLIENTS];
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd >= 0 && clients[i].plen && !clients[i].hup) {
				p[n] = (struct pollfd){clients[i].fd, POLLOUT, 0};
				who[n++] = i;
			}
		int64_t left = deadline - mono_ms();
		if (n == 0 || left <= 0 || poll(p, (nfds_t)n, (int)left) <= 0)
			break;
		for (int k = 0; k < n; k++) {
			if (p[k].revents & (POLLERR | POLLHUP))
				drop_client(who[k]);
			else if (p[k].revents & POLLOUT)
				client_flush(who[k]);
		}
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0) {
			shutdown(clients[i].fd, SHUT_RDWR);
			drop_client(i);
		}
}
