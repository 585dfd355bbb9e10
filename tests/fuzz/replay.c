/* replay.c - runs a fuzz target over corpus files without libFuzzer, for `make check`: built with
 * the normal compiler and linked with one tests/fuzz/fuzz_<area>.c, it feeds every file of the
 * folders (or files) named on the command line to LLVMFuzzerTestOneInput, each in a child
 * process so that a crash is counted against its file and the others still run.
 *
 *   tests/fuzz/replay_pem tests/fuzz/corpus/fuzz_pem
 *
 * Prints one line per failing file and ends with "N passed, N failed"; exits 1 on any failure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs are small; a bigger file is refused like libFuzzer's -max_len would cut it. */
#define REPLAY_MAX (1024 * 1024)

static int passed, failed;

static int run_one(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    buf = malloc(REPLAY_MAX);
    if (!buf) {
        fclose(f);
        return 1;
    }
    n = fread(buf, 1, REPLAY_MAX, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static void replay_file(const char *path)
{
    pid_t pid;
    int status = 0;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        failed++;
        return;
    }
    if (pid == 0) {
        /* exit, not _exit: the target's atexit handlers remove its scratch store. */
        exit(run_one(path));
    }
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        failed++;
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        passed++;
        return;
    }
    failed++;
    if (WIFSIGNALED(status)) {
        printf("FAIL %s: signal %d\n", path, WTERMSIG(status));
    } else {
        printf("FAIL %s: exit %d\n", path, WEXITSTATUS(status));
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of a folder, in name order so that runs compare. */
static void replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;

    if (!d) {
        printf("FAIL %s: %s\n", dir, strerror(errno));
        failed++;
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            char **nn;
            cap = cap ? 2 * cap : 64;
            nn = realloc(names, cap * sizeof(*names));
            if (!nn) {
                abort();
            }
            names = nn;
        }
        names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!names[n]) {
            abort();
        }
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), by_name);
    for (i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            replay_file(names[i]);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            replay_dir(argv[i]);
        } else {
            replay_file(argv[i]);
        }
    }
    printf("%s: %d passed, %d failed\n", argv[0], passed, failed);
    return failed ? 1 : 0;
}
