/* The classic System V reader: ftok + shmget + shmat, print the string, shmdt + shmctl(IPC_RMID).
   Usage: sysv_reader PATH PROJ */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  key_t key = ftok(argv[1], atoi(argv[2]));
  if (key == -1) { perror("ftok"); return 1; }
  int shmid = shmget(key, 0, 0666);
  if (shmid == -1) { perror("shmget"); return 1; }
  char *p = shmat(shmid, NULL, 0);
  if (p == (char *)-1) { perror("shmat"); return 1; }
  printf("%s\n", p);
  if (shmdt(p) != 0) { perror("shmdt"); return 1; }
  if (shmctl(shmid, IPC_RMID, NULL) != 0) { perror("shmctl"); return 1; }
  return 0;
}
