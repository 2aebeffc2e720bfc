// lock: one process at a time in a directory (a results directory, a run
// directory).
//
// The lock is flock(2) on "<dir>/.lock", so the kernel releases it when the
// holder dies, however it dies (kill -9 included): a lock file left behind by
// a killed process is free to take. The holder writes "<pid> <what>\n" into
// the file so that a refused process can say who holds it.
#ifndef LS_LOCK_H
#define LS_LOCK_H

typedef struct {
    int fd;     // -1 when not held
    char *path; // "<dir>/.lock" (owned)
} ls_lock;

// What a refused acquire found in the lock file.
typedef struct {
    long pid;        // 0 if the holder had not yet written it
    char what[128];  // the holder's `what` ("lorascope run"), "" if unknown
} ls_lock_holder;

// Creates dir (mkdir -p) and takes its lock without waiting; `what` names the
// holder for others' messages ("lorascope run"). Returns 0 (held: release
// with ls_lock_release); 1 if another process holds it, with *holder filled
// (may be NULL) and ls_error() set to "<dir>: locked by <what> (pid N)";
// -1 on other errors with ls_error() set. The descriptor is close-on-exec,
// so programs this process starts do not inherit the lock.
int ls_lock_acquire(const char *dir, const char *what, ls_lock *lock, ls_lock_holder *holder);
// Removes the lock file and releases the lock. Safe on a lock not held.
void ls_lock_release(ls_lock *lock);

#endif
