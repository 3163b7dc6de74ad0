/* The classic System V writer: ftok + shmget(IPC_CREAT|0666) + shmat + strcpy + shmdt.
   Usage: sysv_writer PATH PROJ TEXT   (prints the key and shmid it used) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  key_t key = ftok(argv[1], atoi(argv[2]));
  if (key == -1) { perror("ftok"); return 1; }
  int shmid = shmget(key, 1024, IPC_CREAT | 0666);
  if (shmid == -1) { perror("shmget"); return 1; }
  char *p = shmat(shmid, NULL, 0);
  if (p == (char *)-1) { perror("shmat"); return 1; }
  strcpy(p, argv[3]);
  printf("%d %d\n", (int)key, shmid);
  return shmdt(p) == 0 ? 0 : 1;
}
