// libFuzzer target: the training config reader (tc_load_ini over defaults,
// through base/ini_reader and base/options) on a fuzzed INI file.
#include "fuzz_util.h"
#include "train/train_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fuzz_write("train.ini", data, size, path);
    ls_train_config c;
    tc_defaults(&c);
    fuzz_note("tc_load_ini", tc_load_ini(&c, path));
    return 0;
}
