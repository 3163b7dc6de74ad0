/* Prints the offsets of struct shmid_ds this test decodes, so the TS layout is checked against the
   compiler's. */
#include <stddef.h>
#include <stdio.h>
#include <sys/shm.h>

int main(void) {
  printf("{\"size\":%zu,\"key\":%zu,\"uid\":%zu,\"gid\":%zu,\"cuid\":%zu,\"cgid\":%zu,\"mode\":%zu,"
         "\"segsz\":%zu,\"atime\":%zu,\"dtime\":%zu,\"ctime\":%zu,\"cpid\":%zu,\"lpid\":%zu,\"nattch\":%zu,"
         "\"nattchBytes\":%zu}\n",
         sizeof(struct shmid_ds), offsetof(struct shmid_ds, shm_perm.__key),
         offsetof(struct shmid_ds, shm_perm.uid), offsetof(struct shmid_ds, shm_perm.gid),
         offsetof(struct shmid_ds, shm_perm.cuid), offsetof(struct shmid_ds, shm_perm.cgid),
         offsetof(struct shmid_ds, shm_perm.mode), offsetof(struct shmid_ds, shm_segsz),
         offsetof(struct shmid_ds, shm_atime), offsetof(struct shmid_ds, shm_dtime),
         offsetof(struct shmid_ds, shm_ctime), offsetof(struct shmid_ds, shm_cpid),
         offsetof(struct shmid_ds, shm_lpid), offsetof(struct shmid_ds, shm_nattch),
         sizeof(((struct shmid_ds *)0)->shm_nattch));
  return 0;
}
