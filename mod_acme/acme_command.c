/* acme_command.c - a program of the operator's, run without a shell under a supervisor that
 * kills its process group at the timeout (acme_command.h says why).
 *
 * The caller is a thread of a multi-threaded process: between fork() and execve() the children
 * call only async-signal-safe functions (no malloc, no locks), so everything they need (argv,
 * env, the timeout in seconds) is ready before the first fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>

#include "acme_command.h"

#define SLICE_MS 50 /* longest poll() before the exit is looked at again */

/* What the supervisor tells the caller through the status pipe. */
typedef struct status_rec_t {
    int kind; /* 'E' exec failed (value: errno), 'F' fork failed, 'X' the program's wait status,
               * 'T' killed at its timeout, 'S' stopped on request */
    int value;
} status_rec_t;

struct acme_command_t {
    pid_t pid; /* the supervisor */
    int out_fd, status_fd;
    int done, detached, eof;
    char *out;
    apr_size_t len, max, dropped;
    apr_time_t start;
    acme_command_result_t res;
    apr_pool_t *p;
};

/* --- in the forked processes: async-signal-safe calls only --- */

static volatile sig_atomic_t sv_alarm, sv_stop;

static void sv_on_signal(int sig)
{
    if (sig == SIGALRM) {
        sv_alarm = 1;
    } else {
        sv_stop = 1;
    }
}

static void sv_report(int kind, int value)
{
    status_rec_t rec;
    ssize_t n;

    rec.kind = kind;
    rec.value = value;
    n = write(3, &rec, sizeof(rec)); /* at most PIPE_BUF: atomic */
    (void)n;
}

/* Closes every descriptor from first on. */
static void sv_close_from(int first, int maxfd)
{
    int fd;

    if (close_range((unsigned int)first, ~0U, 0) == 0) {
        return;
    }
    for (fd = first; fd < maxfd; fd++) {
        close(fd);
    }
}

static void sv_signals_default(void)
{
    struct sigaction sa;
    sigset_t none;
    int sig;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            sigaction(sig, &sa, NULL);
        }
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The program: its own process group, a clean signal state, descriptors 0-2 only. */
static void sv_exec(const char *const *argv, const char *const *env, int maxfd)
{
    setpgid(0, 0);
    sv_signals_default();
    fcntl(3, F_SETFD, FD_CLOEXEC); /* the status pipe: closed by a successful exec */
    sv_close_from(4, maxfd);
    execve(argv[0], (char *const *)argv, (char *const *)env);
    sv_report('E', errno);
    _exit(127);
}

/* The supervisor: starts the program, waits for it, kills its group at the timeout or when
 * asked (SIGTERM), and reports how it ended. Descriptors: 0 /dev/null, 1 and 2 the output
 * pipe, 3 the status pipe, 4 the output pipe's read end (kept open so that a command left to
 * itself never gets EPIPE: it is killed at its timeout instead). */
static void sv_main(const char *const *argv, const char *const *env, unsigned int secs, int maxfd)
{
    struct sigaction sa;
    pid_t child, r;
    int st = 0, killed = 0;

    setpgid(0, 0);
    sv_signals_default();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = sv_on_signal; /* no SA_RESTART: waitpid returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    child = fork();
    if (child == 0) {
        sv_exec(argv, env, maxfd);
    }
    if (child < 0) {
        sv_report('F', errno);
        _exit(1);
    }
    setpgid(child, child); /* also here: the kill below must find the group at once */
    alarm(secs);
    for (;;) {
        r = waitpid(child, &st, 0);
        if (r == child) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            st = 0;
            break;
        }
        if ((sv_alarm || sv_stop) && !killed) {
            killed = sv_alarm ? 'T' : 'S';
            kill(-child, SIGKILL);
            kill(child, SIGKILL);
        }
    }
    if (killed) {
        sv_report(killed, 1);
        kill(-child, SIGKILL); /* what the program left behind in its group */
    }
    sv_report('X', st);
    _exit(0);
}

/* --- in the caller --- */

static apr_status_t command_cleanup(void *data)
{
    acme_command_t *cmd = data;
    int st;

    if (!cmd->done && !cmd->detached && cmd->pid > 0) {
        kill(cmd->pid, SIGTERM); /* the supervisor kills the group and exits at once */
        while (waitpid(cmd->pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    if (cmd->out_fd >= 0) {
        close(cmd->out_fd);
    }
    if (cmd->status_fd >= 0) {
        close(cmd->status_fd);
    }
    return APR_SUCCESS;
}

apr_status_t acme_command_start(acme_command_t **pcmd, const char *const *argv,
                                const char *const *env, apr_interval_time_t timeout,
                                apr_size_t out_max, apr_pool_t *p)
{
    acme_command_t *cmd;
    struct rlimit rl;
    int outp[2] = {-1, -1}, statp[2] = {-1, -1}, devnull = -1, maxfd = 1024;
    unsigned int secs = (unsigned int)((timeout + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
    pid_t pid;
    apr_status_t rv = APR_SUCCESS;

    if (!argv || !argv[0] || argv[0][0] != '/' || timeout <= 0) {
        return APR_EINVAL;
    }
    /* Only for kernels without close_range (before 5.9): the descriptors to close one by one. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        maxfd =
            rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1 << 20) ? (int)rl.rlim_cur : (1 << 20);
    }
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(statp, O_CLOEXEC) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        goto out;
    }
    pid = fork();
    if (pid == 0) {
        /* 0-4 as sv_main expects; the descriptors are all above 2 (0-2 are open in a server),
         * so each dup2 source is intact when it is copied. */
        dup2(devnull, 0);
        dup2(outp[1], 1);
        dup2(outp[1], 2);
        dup2(statp[1], 3);
        dup2(outp[0], 4);
        sv_close_from(5, maxfd);
        sv_main(argv, env, secs ? secs : 1, maxfd);
    }
    if (pid < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        goto out;
    }
    setpgid(pid, pid);
    cmd = apr_pcalloc(p, sizeof(*cmd));
    cmd->pid = pid;
    cmd->out_fd = outp[0];
    cmd->status_fd = statp[0];
    outp[0] = statp[0] = -1;
    cmd->max = out_max;
    cmd->out = apr_palloc(p, out_max + 1);
    cmd->start = apr_time_now();
    cmd->p = p;
    fcntl(cmd->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(cmd->status_fd, F_SETFL, O_NONBLOCK); /* read once the supervisor has ended */
    apr_pool_cleanup_register(p, cmd, command_cleanup, apr_pool_cleanup_null);
    *pcmd = cmd;
out:
    if (outp[0] >= 0) {
        close(outp[0]);
    }
    if (outp[1] >= 0) {
        close(outp[1]);
    }
    if (statp[0] >= 0) {
        close(statp[0]);
    }
    if (statp[1] >= 0) {
        close(statp[1]);
    }
    if (devnull >= 0) {
        close(devnull);
    }
    return rv;
}

/* Reads what is there without blocking; keeps the first cmd->max bytes, counts the rest. */
static void read_output(acme_command_t *cmd)
{
    char buf[1024];
    ssize_t n;

    while (!cmd->eof) {
        n = read(cmd->out_fd, buf, sizeof(buf));
        if (n > 0) {
            apr_size_t keep =
                (apr_size_t)n < cmd->max - cmd->len ? (apr_size_t)n : cmd->max - cmd->len;
            memcpy(cmd->out + cmd->len, buf, keep);
            cmd->len += keep;
            cmd->dropped += (apr_size_t)n - keep;
            continue;
        }
        if (n == 0) {
            cmd->eof = 1;
        } else if (errno != EINTR) {
            break; /* EAGAIN: nothing more now */
        }
    }
}

/* The output as one line for the log: trailing blanks cut, "(none)" when empty. */
static const char *output_text(acme_command_t *cmd)
{
    apr_size_t len = cmd->len;

    while (len &&
           (cmd->out[len - 1] == '\n' || cmd->out[len - 1] == '\r' || cmd->out[len - 1] == ' ')) {
        len--;
    }
    if (!len) {
        return "(none)";
    }
    return apr_psprintf(
        cmd->p, "%.*s%s", (int)len, cmd->out,
        cmd->dropped ? apr_psprintf(cmd->p, " [%" APR_SIZE_T_FMT " more bytes]", cmd->dropped)
                     : "");
}

static void finish(acme_command_t *cmd)
{
    acme_command_result_t *res = &cmd->res;
    status_rec_t rec;
    int st = -1;

    read_output(cmd);
    res->started = 1;
    while (read(cmd->status_fd, &rec, sizeof(rec)) == (ssize_t)sizeof(rec)) {
        if (rec.kind == 'E' || rec.kind == 'F') {
            res->started = 0;
            res->err = APR_FROM_OS_ERROR(rec.value);
        } else if (rec.kind == 'T') {
            res->timed_out = 1;
        } else if (rec.kind == 'S') {
            res->stopped = 1;
        } else if (rec.kind == 'X') {
            st = rec.value;
        }
    }
    if (st == -1 && res->started) {
        res->stopped = 1; /* the supervisor itself was killed: nothing to report */
    } else if (WIFEXITED(st)) {
        res->exited = 1;
        res->code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        res->sig = WTERMSIG(st);
    }
    res->took = apr_time_now() - cmd->start;
    res->output = output_text(cmd);
    cmd->done = 1;
}

int acme_command_poll(acme_command_t *cmd, apr_interval_time_t wait,
                      const acme_command_result_t **pres)
{
    apr_time_t until = apr_time_now() + wait;
    int st;

    while (!cmd->done) {
        struct pollfd pfd;
        apr_interval_time_t left;
        pid_t r;

        read_output(cmd);
        r = waitpid(cmd->pid, &st, WNOHANG);
        if (r == cmd->pid || (r < 0 && errno == ECHILD)) {
            finish(cmd);
            break;
        }
        left = until - apr_time_now();
        if (left <= 0) {
            return 0;
        }
        if (left > apr_time_from_msec(SLICE_MS)) {
            left = apr_time_from_msec(SLICE_MS);
        }
        if (cmd->eof) {
            apr_sleep(left); /* only the exit is awaited now */
            continue;
        }
        pfd.fd = cmd->out_fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        poll(&pfd, 1, (int)((left + 999) / 1000));
    }
    *pres = &cmd->res;
    return 1;
}

void acme_command_stop(acme_command_t *cmd)
{
    if (!cmd->done && cmd->pid > 0) {
        kill(cmd->pid, SIGTERM);
    }
}

void acme_command_detach(acme_command_t *cmd)
{
    cmd->detached = 1;
}

const char *acme_command_ended(const acme_command_result_t *res, apr_pool_t *p)
{
    if (!res->started) {
        return apr_psprintf(p, "could not be started: %s", acme_strerror(res->err, p));
    }
    if (res->timed_out) {
        return "was killed at its timeout";
    }
    if (res->stopped) {
        return "was stopped";
    }
    if (res->exited) {
        return apr_psprintf(p, "exited with %d", res->code);
    }
    return apr_psprintf(p, "ended by signal %d", res->sig);
}
