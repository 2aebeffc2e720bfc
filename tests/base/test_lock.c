// base/lock: one holder per directory; a refused process learns the holder's
// pid; release (or the holder's death) frees the directory.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/lock.h"
#include "base/util.h"
#include "harness.h"

// In a forked child: tries the lock on dir; exits 0 if it got it, 1 if it was
// refused naming `expect_pid` as "lorascope test", 2 on anything else.
static int child_try(const char *dir, long expect_pid) {
    pid_t pid = fork();
    if (pid == 0) {
        ls_lock l;
        ls_lock_holder h;
        int rc = ls_lock_acquire(dir, "child", &l, &h);
        if (rc == 0) _exit(0);
        char want[64];
        snprintf(want, sizeof want, "locked by lorascope test (pid %ld)", expect_pid);
        if (rc == 1 && h.pid == expect_pid && !strcmp(h.what, "lorascope test") && strstr(ls_error(), want)) _exit(1);
        fprintf(stderr, "child: rc %d, holder pid %ld '%s', error: %s\n", rc, h.pid, h.what, ls_error());
        _exit(2);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_lock_is_exclusive_names_the_holder_and_frees_on_release(void) {
    const char *dir = ls_test_tmpdir("lock");
    char *sub = ls_path_join(dir, "results/sub"); // created by the acquire
    ls_lock l;
    CHECK_MSG(ls_lock_acquire(sub, "lorascope test", &l, NULL) == 0, "%s", ls_error());
    CHECK(ls_is_dir(sub));
    CHECK_INT(child_try(sub, (long)getpid()), 1);
    ls_lock_release(&l);
    char *file = ls_path_join(sub, ".lock");
    CHECK_MSG(!ls_exists(file), "%s left behind by release", file);
    CHECK_INT(child_try(sub, 0), 0);
    CHECK_MSG(ls_lock_acquire(sub, "lorascope test", &l, NULL) == 0, "re-acquire: %s", ls_error());
    ls_lock_release(&l);
    ls_lock_release(&l); // a second release is harmless
    free(file);
    free(sub);
}

static void test_lock_of_a_killed_holder_is_free(void) {
    const char *dir = ls_test_tmpdir("lock_killed");
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        ls_lock l;
        char c = ls_lock_acquire(dir, "lorascope test", &l, NULL) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1) _exit(2);
        pause();
        _exit(0);
    }
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
    CHECK_INT(child_try(dir, (long)pid), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    char *file = ls_path_join(dir, ".lock");
    CHECK_MSG(ls_exists(file), "the killed holder's lock file should still be there (and free)");
    ls_lock l;
    CHECK_MSG(ls_lock_acquire(dir, "lorascope test", &l, NULL) == 0, "after the holder's kill: %s", ls_error());
    ls_lock_release(&l);
    free(file);
    close(ready[0]);
    close(ready[1]);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_lock_is_exclusive_names_the_holder_and_frees_on_release),
        LS_TEST(test_lock_of_a_killed_holder_is_free),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
