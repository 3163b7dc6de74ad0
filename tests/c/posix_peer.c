/* A C peer using shm_open + mmap directly, for the interop tests.
 *   create NAME  create /NAME (4096 bytes, 0600), write int32 {10, 20, 30} and a string at 64,
 *                print "ready", wait for a line on stdin, print int32[0..3], unmap, shm_unlink
 *   open NAME    open /NAME, print its size (fstat) and int64[0..2], write int64 {-1, 2^40}, unmap
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  char path[300];
  snprintf(path, sizeof path, "/%s", argv[2]);
  if (strcmp(argv[1], "create") == 0) {
    int fd = shm_open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) { perror("shm_open"); return 1; }
    if (ftruncate(fd, 4096) != 0) { perror("ftruncate"); return 1; }
    int32_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    close(fd);
    p[0] = 10; p[1] = 20; p[2] = 30;
    strcpy((char *)p + 64, "hello from C");
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    printf("%d %d %d %d\n", p[0], p[1], p[2], p[3]);
    munmap(p, 4096);
    if (shm_unlink(path) != 0) { perror("shm_unlink"); return 1; }
    return 0;
  }
  if (strcmp(argv[1], "open") == 0) {
    int fd = shm_open(path, O_RDWR, 0);
    if (fd < 0) { perror("shm_open"); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    int64_t *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    close(fd);
    printf("%lld %lld %lld\n", (long long)st.st_size, (long long)p[0], (long long)p[1]);
    p[0] = -1;
    p[1] = (int64_t)1 << 40;
    munmap(p, st.st_size);
    return 0;
  }
  return 2;
}
