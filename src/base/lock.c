// lock: flock(2) on "<dir>/.lock" with the holder's pid written inside.
#include "base/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

// Reads "<pid> <what>" from the lock file. The holder writes it just after
// taking the lock, so an empty file is read again for up to ~0.5 s.
static void read_holder(const char *path, ls_lock_holder *h) {
    memset(h, 0, sizeof *h);
    for (int tries = 0; tries < 50; tries++) {
        char *text = ls_exists(path) ? ls_read_file(path, NULL) : NULL;
        if (text) {
            char *end;
            long pid = strtol(text, &end, 10);
            if (end != text && pid > 0) {
                h->pid = pid;
                while (*end == ' ') end++;
                size_t n = strcspn(end, "\n");
                if (n >= sizeof h->what) n = sizeof h->what - 1;
                memcpy(h->what, end, n);
                h->what[n] = 0;
                free(text);
                return;
            }
            free(text);
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
}

int ls_lock_acquire(const char *dir, const char *what, ls_lock *lock, ls_lock_holder *holder) {
    lock->fd = -1;
    lock->path = NULL;
    if (ls_mkdir_p(dir)) return -1;
    char *path = ls_path_join(dir, ".lock");
    // A releaser unlinks the file while holding the lock, so a lock taken on a
    // file that is no longer at `path` is worthless: take it again on the new one.
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) {
            int e = errno;
            ls_fail("%s: cannot open lock file: %s", path, strerror(e));
            free(path);
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e != EWOULDBLOCK) {
                ls_fail("%s: cannot lock: %s", path, strerror(e));
                free(path);
                return -1;
            }
            ls_lock_holder h;
            read_holder(path, &h);
            if (holder) *holder = h;
            if (h.pid) ls_fail("%s: locked by %s (pid %ld)", dir, h.what[0] ? h.what : "another process", h.pid);
            else ls_fail("%s: locked by another process (pid unknown)", dir);
            free(path);
            return 1;
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_ino == now.st_ino && held.st_dev == now.st_dev) {
            char line[200];
            int n = snprintf(line, sizeof line, "%ld %s\n", (long)getpid(), what);
            if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
                int e = errno;
                ls_fail("%s: cannot write lock file: %s", path, strerror(e));
                unlink(path);
                close(fd);
                free(path);
                return -1;
            }
            lock->fd = fd;
            lock->path = path;
            return 0;
        }
        close(fd);
    }
}

void ls_lock_release(ls_lock *lock) {
    if (lock->fd >= 0) {
        unlink(lock->path); // while still held: see ls_lock_acquire
        close(lock->fd);
    }
    free(lock->path);
    lock->fd = -1;
    lock->path = NULL;
}
