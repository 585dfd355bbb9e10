/* acme_command.h - runs a program of the operator's (ACMEDNSCommand, ACMENotifyCommand) without a
 * shell: execve with the arguments and environment given, stdin /dev/null, stdout and stderr
 * into one pipe of which the first out_max bytes are kept for the log.
 *
 * The program runs under a small supervisor process (a fork of the caller) that enforces the
 * timeout: at it, or when the caller asks (acme_command_stop), the supervisor kills the
 * program's whole process group (SIGKILL), so a script's own children go too. The timeout holds
 * even when the caller goes away first (acme_command_detach, a child of httpd that exits).
 * Both processes have process groups of their own: a signal httpd sends to its own group does
 * not reach them. Every file descriptor of the caller beyond stdin, stdout and stderr is closed
 * in them (a listening socket must not outlive the server in a leftover command).
 *
 * One thread starts and polls a command; commands share nothing. Polling may wait (a worker
 * running ACMEDNSCommand) or not (the renewal driver's tick reaping ACMENotifyCommand).
 */
#ifndef ACME_COMMAND_H
#define ACME_COMMAND_H

#include "acme_core.h"

typedef struct acme_command_t acme_command_t;

typedef struct acme_command_result_t {
    int started;              /* 0: the program could not be executed (err says why) */
    apr_status_t err;         /* ... the error of execve or fork */
    int exited;               /* 1: it exited with code; 0: it ended by signal sig */
    int code;                 /* exit code */
    int sig;                  /* signal that ended it */
    int timed_out;            /* killed at its timeout */
    int stopped;              /* killed because the caller asked (acme_command_stop) */
    apr_interval_time_t took; /* from start to end */
    const char *output;       /* what it wrote, as one line for a log; "(none)" when nothing */
} acme_command_result_t;

/* Starts argv[0] (an absolute path; argv and env NULL-terminated) with a timeout (> 0, rounded
 * up to whole seconds). APR_SUCCESS once the supervisor runs; an exec failure of the program
 * comes back from acme_command_poll (result.started 0). The command is stopped and reaped when
 * p is cleared, unless detached. */
apr_status_t acme_command_start(acme_command_t **pcmd, const char *const *argv,
                                const char *const *env, apr_interval_time_t timeout,
                                apr_size_t out_max, apr_pool_t *p);

/* Reads what the command wrote, waiting for it to end for up to wait (0: not at all). Returns 1
 * once it has ended, with *pres filled (valid as long as the command's pool), else 0. */
int acme_command_poll(acme_command_t *cmd, apr_interval_time_t wait,
                      const acme_command_result_t **pres);

/* Kills the command's process group now; the next poll reports it as stopped. */
void acme_command_stop(acme_command_t *cmd);

/* Leaves the command to itself: the pool's cleanup no longer waits for it; its supervisor still
 * kills it at its timeout, and what it writes from now on is read by nobody (writing never
 * fails for it: the supervisor keeps the pipe open). For a caller that goes away. */
void acme_command_detach(acme_command_t *cmd);

/* How it ended, in words: "exited with 0", "exited with 3", "was killed after 30 s (its
 * timeout)", "was stopped", "ended by signal 9", "could not be started: ...". */
const char *acme_command_ended(const acme_command_result_t *res, apr_pool_t *p);

#endif /* ACME_COMMAND_H */
