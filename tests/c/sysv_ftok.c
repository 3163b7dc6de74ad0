/* Prints ftok(PATH, id) for each id given, one per line (-1 and errno name on failure). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>

int main(int argc, char **argv) {
  for (int i = 2; i < argc; i++) {
    errno = 0;
    key_t key = ftok(argv[1], atoi(argv[i]));
    printf("%d %d\n", (int)key, key == -1 ? errno : 0);
  }
  return 0;
}
