// The base layer: the one number parser, the one INI reader, option tables.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/ini_reader.h"
#include "base/options.h"
#include "base/parse.h"
#include "base/sha256.h"
#include "base/util.h"
#include "harness.h"

// ----------------------------------------------------------------------------
// numbers

static void test_parse_accepts_whole_numbers_in_range_only(void) {
    int i;
    long long ll;
    double d;
    CHECK_INT(ls_parse_int("42", "--n", 1, 100, &i), 0);
    CHECK_INT(i, 42);
    CHECK_INT(ls_parse_int("101", "--n", 1, 100, &i), -1);
    CHECK_STR_CONTAINS(ls_error(), "--n: expected an integer in [1, 100], found '101'");
    CHECK_INT(ls_parse_int("4x", "--n", 1, 100, &i), -1);
    CHECK_INT(ls_parse_int("", "--n", 1, 100, &i), -1);
    CHECK_INT(ls_parse_int("2.5", "--n", 1, 100, &i), -1);
    CHECK_INT(ls_parse_int64("4294967295", "--seed", 0, 4294967295LL, &ll), 0);
    CHECK_INT(ll, 4294967295LL);
    CHECK_INT(ls_parse_int64("99999999999999999999", "--seed", 0, 4294967295LL, &ll), -1);
    CHECK_INT(ls_parse_double("0.5", "--p", 0, 1, LS_OPEN_LO, &d), 0);
    CHECK_NEAR(d, 0.5, 0);
    CHECK_INT(ls_parse_double("0", "--p", 0, 1, LS_OPEN_LO, &d), -1);
    CHECK_STR_CONTAINS(ls_error(), "--p: expected a number in (0, 1], found '0'");
    CHECK_INT(ls_parse_double("nan", "--p", 0, 1, 0, &d), -1);
    CHECK_INT(ls_parse_double("inf", "--p", 0, 1e308, 0, &d), -1);
    CHECK_INT(ls_parse_double("1", "--p", 0, 1, LS_OPEN_HI, &d), -1);
    CHECK_STR_CONTAINS(ls_error(), "[0, 1)");
}

static void test_parse_int_list(void) {
    int v[4];
    CHECK_INT(ls_parse_int_list("1,2,8", "--threads", 1, 1024, v, 4), 3);
    CHECK_INT(v[2], 8);
    CHECK_INT(ls_parse_int_list("1,,2", "--threads", 1, 1024, v, 4), -1);
    CHECK_INT(ls_parse_int_list("1,2,", "--threads", 1, 1024, v, 4), -1);
    CHECK_INT(ls_parse_int_list("", "--threads", 1, 1024, v, 4), -1);
    CHECK_INT(ls_parse_int_list("1,2,3,4,5", "--threads", 1, 1024, v, 4), -1);
    CHECK_STR_CONTAINS(ls_error(), "up to 4 integers in [1, 1024]");
}

static void test_durations_read_as_people_write_them(void) {
    char b[32];
    ls_fmt_duration(b, sizeof b, 42.4);
    CHECK_STR_CONTAINS(b, "42s");
    ls_fmt_duration(b, sizeof b, 187);
    CHECK(!strcmp(b, "3m07s"));
    ls_fmt_duration(b, sizeof b, 3900);
    CHECK(!strcmp(b, "1h05m"));
    ls_fmt_duration(b, sizeof b, -1);
    CHECK(!strcmp(b, "0s"));
}

// ----------------------------------------------------------------------------
// INI files

static char *write_temp(const char *text) {
    char *path = ls_strdup("/tmp/ls_test_base_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

typedef struct {
    char seen[512];
} ini_log;

static int log_section(void *ctx, const char *section, int line) {
    ini_log *l = ctx;
    size_t n = strlen(l->seen);
    snprintf(l->seen + n, sizeof l->seen - n, "[%s]@%d ", section, line);
    return strcmp(section, "bad") ? 0 : ls_fail("x:%d: unknown section [%s]", line, section);
}

static int log_entry(void *ctx, const char *section, const char *key, const char *value, int line) {
    ini_log *l = ctx;
    size_t n = strlen(l->seen);
    snprintf(l->seen + n, sizeof l->seen - n, "%s.%s=%s@%d ", section, key, value, line);
    return 0;
}

static void test_ini_reader_reports_sections_keys_and_lines(void) {
    char *p = write_temp("; comment\n# comment\n[a]\nk = v ; trailing\n  j=w # trailing too\n\n[b c]\nx = 1=2\n");
    ini_log l = {{0}};
    CHECK_MSG(ls_ini_read(p, log_section, log_entry, &l) == 0, "%s", ls_error());
    CHECK_STR_CONTAINS(l.seen, "[a]@3 a.k=v@4 a.j=w@5 [b c]@7 b c.x=1=2@8");
    unlink(p);
    free(p);
}

static void test_ini_reader_rejects_bad_files_naming_the_line(void) {
    ini_log l = {{0}};
    char *p = write_temp("[a]\nk = v\nno equals sign here\n");
    CHECK_INT(ls_ini_read(p, NULL, log_entry, &l), -1);
    CHECK_STR_CONTAINS(ls_error(), ":3: syntax error");
    unlink(p);
    free(p);
    p = write_temp("[a]\n\n[bad]\nk = v\n");
    CHECK_INT(ls_ini_read(p, log_section, log_entry, &l), -1);
    CHECK_STR_CONTAINS(ls_error(), "x:3: unknown section [bad]");
    unlink(p);
    free(p);
    p = write_temp("[a] junk\n");
    CHECK_INT(ls_ini_read(p, log_section, log_entry, &l), -1);
    CHECK_STR_CONTAINS(ls_error(), ":1: expected a section header");
    unlink(p);
    free(p);
    char line[400];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = 0;
    char text[500];
    snprintf(text, sizeof text, "[a]\nk = %s\n", line);
    p = write_temp(text);
    CHECK_INT(ls_ini_read(p, NULL, log_entry, &l), -1);
    CHECK_STR_CONTAINS(ls_error(), ":2: line longer than");
    unlink(p);
    free(p);
    // Not a regular file: refused at once instead of read forever.
    CHECK_INT(ls_ini_read("/dev/zero", NULL, log_entry, &l), -1);
    CHECK_STR_CONTAINS(ls_error(), "/dev/zero: expected a regular file");
    CHECK_INT(ls_ini_read("/nonexistent/x.ini", NULL, log_entry, &l), -1);
    CHECK_STR_CONTAINS(ls_error(), "/nonexistent/x.ini: cannot open");
}

// ----------------------------------------------------------------------------
// option tables

typedef struct {
    int n;
    double p;
    int flag;
    char name[8];
    char mode[8];
} demo;

#define S demo
static const opt_spec DEMO[] = {
    OPT_INT_(S, "a", "n", "n", n, 1, 10, 0, "a count"),
    OPT_FLOAT_(S, "a", "p", "p", p, 0, 1, LS_OPEN_LO, "a fraction"),
    OPT_BOOL_(S, "b", "flag", "flag", flag, "a switch"),
    OPT_STR_(S, "b", "name", "name", name, 1, "a name"),
    OPT_CHOICE_(S, "b", "mode", "mode", mode, "x|yy", "a mode"),
};
#undef S
static const opt_table DEMO_TABLE = {DEMO, 5, "a or b", "demo"};

static int positional(void *ctx, const char *arg) {
    (*(int *)ctx) += (int)strlen(arg);
    return 0;
}

static void test_option_table_serves_flags_ini_and_written_config(void) {
    demo d = {0};
    char *argv[] = {"demo", "--n", "3", "--p=0.25", "--flag", "file", "--name", "abc", "--mode", "yy", NULL};
    int pos = 0;
    CHECK_MSG(opt_parse_argv(&DEMO_TABLE, &d, 10, argv, NULL, NULL, positional, &pos) == 0, "%s", ls_error());
    CHECK_INT(d.n, 3);
    CHECK_NEAR(d.p, 0.25, 0);
    CHECK_INT(d.flag, 1);
    CHECK_INT(pos, 4);
    CHECK(!strcmp(d.name, "abc") && !strcmp(d.mode, "yy"));
    // what is written reads back to the same values
    char *ini = opt_to_ini(&DEMO_TABLE, &d);
    char *p = write_temp(ini);
    demo e = {0};
    CHECK_MSG(opt_load_ini(&DEMO_TABLE, &e, p) == 0, "%s", ls_error());
    CHECK_INT(opt_compare(&DEMO_TABLE, &d, &e, NULL), 0);
    e.n = 4;
    CHECK_INT(opt_compare(&DEMO_TABLE, &d, &e, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "[a] n (--n): the run was started with '3', found '4'");
    const char *const skip_n[] = {"b.n", "a.n", NULL}, *const skip_other[] = {"b.n", "a.p", NULL};
    CHECK_INT(opt_compare(&DEMO_TABLE, &d, &e, skip_n), 0);
    CHECK_INT(opt_compare(&DEMO_TABLE, &d, &e, skip_other), -1);
    unlink(p);
    free(p);
    free(ini);
}

static void test_option_table_errors_name_the_flag_or_line(void) {
    demo d = {0};
    char *a1[] = {"demo", "--n", "11", NULL};
    CHECK_INT(opt_parse_argv(&DEMO_TABLE, &d, 3, a1, NULL, NULL, NULL, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "--n: expected an integer in [1, 10], found '11'");
    char *a2[] = {"demo", "--bogus", NULL};
    CHECK_INT(opt_parse_argv(&DEMO_TABLE, &d, 2, a2, NULL, NULL, NULL, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "unknown option '--bogus'");
    char *a3[] = {"demo", "--n", NULL};
    CHECK_INT(opt_parse_argv(&DEMO_TABLE, &d, 2, a3, NULL, NULL, NULL, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "--n: expected a value");
    char *a4[] = {"demo", "stray", NULL};
    CHECK_INT(opt_parse_argv(&DEMO_TABLE, &d, 2, a4, NULL, NULL, NULL, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "unexpected argument 'stray'");
    char *a5[] = {"demo", "--mode", "z", NULL};
    CHECK_INT(opt_parse_argv(&DEMO_TABLE, &d, 3, a5, NULL, NULL, NULL, NULL), -1);
    CHECK_STR_CONTAINS(ls_error(), "--mode: expected one of x|yy, found 'z'");
    char *p = write_temp("[a]\nn = 2\n[c]\nq = 1\n");
    CHECK_INT(opt_load_ini(&DEMO_TABLE, &d, p), -1);
    CHECK_STR_CONTAINS(ls_error(), ":4: [c] q: unknown section [c] (expected a or b)");
    unlink(p);
    free(p);
    p = write_temp("n = 2\n");
    CHECK_INT(opt_load_ini(&DEMO_TABLE, &d, p), -1);
    CHECK_STR_CONTAINS(ls_error(), ":1: key 'n' outside a section (expected a or b)");
    unlink(p);
    free(p);
}

// ----------------------------------------------------------------------------
// whole files

static void test_read_file_refuses_devices_directories_and_files_over_the_limit(void) {
    CHECK(ls_read_file("/dev/zero", NULL) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "/dev/zero: expected a regular file");
    CHECK(ls_read_file("/tmp", NULL) == NULL);
    CHECK_STR_CONTAINS(ls_error(), "/tmp: expected a regular file");
    char *p = write_temp("0123456789");
    size_t n = 0;
    char *text = ls_read_file_max(p, &n, 10);
    CHECK_MSG(text && n == 10 && !strcmp(text, "0123456789"), "%s", text ? text : ls_error());
    free(text);
    CHECK(ls_read_file_max(p, NULL, 9) == NULL);
    CHECK_STR_CONTAINS(ls_error(), ": file is 10 bytes, more than the limit of 9 bytes");
    unlink(p);
    free(p);
}

static void test_option_ini_key_given_twice_is_an_error(void) {
    demo d = {0};
    char *p = write_temp("[a]\nn = 2\n\nn = 3\n");
    CHECK_INT(opt_load_ini(&DEMO_TABLE, &d, p), -1);
    CHECK_STR_CONTAINS(ls_error(), ":4: [a] n: given twice (first on line 2)");
    unlink(p);
    free(p);
}

// ----------------------------------------------------------------------------
// SHA-256

// FIPS 180-2's examples (appendix B) and the million a's, fed in uneven
// pieces so that the block boundary falls everywhere.
static void test_sha256_matches_the_standard_examples(void) {
    char hex[65];
    ls_sha256_hex("abc", 3, hex);
    CHECK_STR_CONTAINS(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ls_sha256_hex("", 0, hex);
    CHECK_STR_CONTAINS(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; // 448 bits: the padding spills
    ls_sha256_hex(two, strlen(two), hex);
    CHECK_STR_CONTAINS(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char a[1000];
    memset(a, 'a', sizeof a);
    ls_sha256_ctx c;
    ls_sha256_init(&c);
    for (size_t done = 0, piece = 1; done < 1000000; piece = piece % 997 + 1) {
        size_t n = 1000000 - done < piece ? 1000000 - done : piece;
        ls_sha256_update(&c, a, n);
        done += n;
    }
    ls_sha256_final(&c, hex);
    CHECK_STR_CONTAINS(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// A file's fingerprint is what sha256sum prints (the shared assets' MANIFEST.md
// lists stories260K.bin's); a directory's is coreutils' sha256sum over its
// files, as sha256.h spells out: subdirectories and dotfiles left out, links
// followed.
static void test_sha256_of_files_and_directories_matches_coreutils(void) {
    char hex[65];
    const char *bin = ls_test_asset("models/stories260K/stories260K.bin");
    if (bin) {
        CHECK_INT(ls_sha256_path(bin, hex), 0);
        CHECK_STR_CONTAINS(hex, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
    }
    const char *d = ls_test_tmpdir("sha256_dir");
    char *sub = ls_path_join(d, "sub"), *cmd = NULL;
    CHECK_INT(ls_mkdir_p(sub), 0);
    const char *files[][2] = {{"config.json", "{}\n"}, {"b.txt", "second"}, {"B.txt", "upper case sorts first"},
                              {".hidden", "left out"}, {"sub/inner", "left out"}, {"empty", ""}};
    for (int i = 0; i < 6; i++) {
        char *p = ls_path_join(d, files[i][0]);
        CHECK_INT(ls_write_file_atomic(p, files[i][1], strlen(files[i][1])), 0);
        free(p);
    }
    char *target = ls_path_join(d, "b.txt"), *link = ls_path_join(d, "linked.txt");
    CHECK_INT(symlink(target, link), 0);
    CHECK_INT(ls_sha256_path(d, hex), 0);
    CHECK_MSG(asprintf(&cmd, "cd '%s' && find -L . -maxdepth 1 -type f ! -name '.*' -printf '%%P\\0' | LC_ALL=C sort -z "
                             "| xargs -0 sha256sum | sha256sum", d) > 0, "asprintf");
    FILE *fp = popen(cmd, "r");
    char want[128] = "";
    CHECK(fp && fgets(want, sizeof want, fp));
    if (fp) pclose(fp);
    want[64] = 0;
    CHECK_MSG(!strcmp(hex, want), "directory fingerprint %s, coreutils %s", hex, want);
    CHECK_INT(ls_sha256_path(sub, hex), 0); // one file
    CHECK_INT(ls_sha256_path("/nonexistent/lorascope", hex), -1);
    CHECK_STR_CONTAINS(ls_error(), "/nonexistent/lorascope: does not exist");
    free(sub);
    free(cmd);
    free(target);
    free(link);
}

int main(int argc, char **argv) {
    static const ls_test tests[] = {
        LS_TEST(test_parse_accepts_whole_numbers_in_range_only),
        LS_TEST(test_parse_int_list),
        LS_TEST(test_durations_read_as_people_write_them),
        LS_TEST(test_ini_reader_reports_sections_keys_and_lines),
        LS_TEST(test_ini_reader_rejects_bad_files_naming_the_line),
        LS_TEST(test_option_table_serves_flags_ini_and_written_config),
        LS_TEST(test_option_table_errors_name_the_flag_or_line),
        LS_TEST(test_read_file_refuses_devices_directories_and_files_over_the_limit),
        LS_TEST(test_option_ini_key_given_twice_is_an_error),
        LS_TEST(test_sha256_matches_the_standard_examples),
        LS_TEST(test_sha256_of_files_and_directories_matches_coreutils),
    };
    return ls_test_main(argc, argv, tests, LS_COUNT(tests));
}
