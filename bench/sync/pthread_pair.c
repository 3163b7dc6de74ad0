/* Reference for bench/sync_bench.ts: uncontended pthread_mutex_lock + pthread_mutex_unlock on a
 * process-shared mutex (as ours is), in ns per pair. Usage: pthread_pair <iterations> <repetitions>;
 * prints one figure per repetition. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 10000000;
  int repetitions = argc > 2 ? atoi(argv[2]) : 5;
  static pthread_mutex_t mutex;
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&mutex, &attr);
  for (int r = 0; r < repetitions; r++) {
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
      pthread_mutex_lock(&mutex);
      __asm__ __volatile__("" ::: "memory"); /* keep the pair from being merged away */
      pthread_mutex_unlock(&mutex);
    }
    printf("%.3f\n", (now_ns() - start) / iterations);
  }
  return 0;
}
