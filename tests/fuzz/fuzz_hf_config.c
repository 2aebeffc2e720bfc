// libFuzzer target: HF config.json through ckpt_load. The input is written as
// config.json into a directory that holds a fixed, valid model.safetensors
// (tests/data/peft/llama_tiny/base's), so that a config which parses far
// enough is checked against real tensors. Inputs under 64 KiB are also tried
// as a llama2.c .bin checkpoint (its 7-int header).
#include "fuzz_util.h"
#include "io/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    static int linked;
    if (!linked) {
        snprintf(path, sizeof path, "%s/model.safetensors", fuzz_scratch());
        if (symlink(LS_FUZZ_MODEL, path) != 0) abort();
        linked = 1;
    }
    fuzz_write("config.json", data, size, path);
    ls_checkpoint ck;
    if (fuzz_note("ckpt_load dir", ckpt_load(&ck, fuzz_scratch())) == 0) ckpt_free(&ck);
    if (size < (1 << 16)) {
        fuzz_write("model.bin", data, size, path);
        if (fuzz_note("ckpt_load bin", ckpt_load(&ck, path)) == 0) ckpt_free(&ck);
    }
    return 0;
}
