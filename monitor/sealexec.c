/* barque-sealexec PROGRAM [ARG...]: run PROGRAM (argv[0] PROGRAM itself) from a copy that
 * nothing can ever write.
 *
 * barque-runtime is the host's Python interpreter until the container process's execve. A
 * container that gets hold of /proc/PID/exe of it (a joining process, or the interpreter
 * re-executed inside the container by a `#!/proc/self/exe` script) could reopen it for
 * writing and replace the host's interpreter (CVE-2019-5736, against runc). Its launcher
 * runs it through here, so its /proc/self/exe is:
 *   - a detached read-only bind mount of that one file (open_tree(OPEN_TREE_CLONE) +
 *     mount_setattr): no copy, no mount table entry, gone with the last process using it; or,
 *     where the new mount API is missing or refused (not root),
 *   - a sealed memfd copy (no write, no resize, seals sealed), as runc's cloned binary.
 * PROGRAM is run by file descriptor (execveat AT_EMPTY_PATH) with its real path as argv[0],
 * so Python finds its prefix and standard library from it as usual.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_open_tree
#define SYS_open_tree 428 /* the same on every architecture */
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define OPEN_TREE_CLONE_ 1
#define AT_RECURSIVE_ 0x8000
#define MOUNT_ATTR_RDONLY_ 0x1
#define MOUNT_ATTR_NOSUID_ 0x2
#define MOUNT_ATTR_NODEV_ 0x4
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 2
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_SEAL 1
#define F_SEAL_SHRINK 2
#define F_SEAL_GROW 4
#define F_SEAL_WRITE 8
#endif

struct mount_attr_ {
	unsigned long long attr_set, attr_clr, propagation, userns_fd;
};

/* A read-only detached bind mount of path, opened; -1 where the kernel or our rights say no. */
static int readonly_mount(const char *path)
{
	int fd = syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE_ | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct mount_attr_ attr = {
		.attr_set = MOUNT_ATTR_RDONLY_ | MOUNT_ATTR_NOSUID_ | MOUNT_ATTR_NODEV_,
	};
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE_, &attr,
		    sizeof attr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 0 once src is copied to dst to its end; -1 with errno on failure. */
static int copy(int src, int dst)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(src, buf, sizeof buf)) > 0)
		for (ssize_t off = 0, w; off < n; off += w)
			if ((w = write(dst, buf + off, n - off)) < 0)
				return -1;
	return n;
}

/* A sealed memfd copy of path; -1 with errno on failure. */
static int sealed_copy(const char *path)
{
	int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -1;
	int fd = memfd_create("barque-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0 && (copy(src, fd) < 0 ||
			fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
						   F_SEAL_WRITE) < 0)) {
		int err = errno;
		close(fd);
		errno = err;
		fd = -1;
	}
	int err = errno;
	close(src);
	errno = err;
	return fd;
}

int main(int argc, char **argv)
{
	extern char **environ;

	if (argc < 2) {
		fputs("usage: barque-sealexec PROGRAM [ARG...]\n", stderr);
		return 2;
	}
	int fd = readonly_mount(argv[1]);
	if (fd < 0)
		fd = sealed_copy(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "barque-sealexec: cannot seal %s: %s\n", argv[1], strerror(errno));
		return 127;
	}
	syscall(SYS_execveat, fd, "", argv + 1, environ, AT_EMPTY_PATH);
	fprintf(stderr, "barque-sealexec: cannot execute %s: %s\n", argv[1], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
