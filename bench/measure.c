/* measure OUT_FILE COMMAND [ARGS...]: runs COMMAND (stdin, stdout and stderr from /dev/null),
 * waits for it, and writes "WALL_NS CPU_NS MAXRSS_KIB STATUS" to OUT_FILE: wall time from
 * just before fork to the end of wait, user + system CPU time and peak RSS of COMMAND and the
 * descendants it waited for. A small static C parent, so that the peak RSS is COMMAND's own,
 * not that of a large parent that forked it (Linux counts the forked image until exec). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: measure OUT_FILE COMMAND [ARGS...]\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0); dup2(null, 1); dup2(null, 2);
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) return 2;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    long long wall = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    long long cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
                  + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
    FILE *out = fopen(argv[1], "w");
    if (!out) return 2;
    fprintf(out, "%lld %lld %ld %d\n", wall, cpu, ru.ru_maxrss,
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    fclose(out);
    return 0;
}
