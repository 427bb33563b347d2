/* Prints CLOCK_MONOTONIC in nanoseconds as its first act: the "app" whose start the exec
 * overhead is measured to (bench/report.py). */
#include <stdio.h>
#include <time.h>

int main(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    printf("%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    return 0;
}
