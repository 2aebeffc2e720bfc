// libFuzzer target: the dataset readers on fuzzed file content. The first
// byte picks the format (low two bits: 0 E2E, 1 SST-2, 2 JSONL, 3 plain
// text) and, for text, the window length T (bits 2..5, plus 1) and the
// document separator (bit 6: "\n\n"); the rest is the file. Loaded pairs are
// tokenized with the byte tokenizer (max_len from the second byte), split and
// batched; loaded text is batched.
#include "fuzz_util.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

static tokenizer *bytes;

static void pairs(ds_pairs *d, int max_len) {
    ds_format fmt = ds_format_default(bytes, max_len);
    if (fuzz_note("ds_pairs_tokenize", ds_pairs_tokenize(d, bytes, &fmt)) == 0) {
        int *tr = NULL, *va = NULL, ntr = 0, nva = 0;
        if (ds_pairs_split(d, 0.25, 7, &tr, &ntr, &va, &nva) == 0) {
            ds_batch b;
            ds_batch_init(&b, 2, max_len - 1);
            for (int i = 0; i + 2 <= ntr && i < 8; i += 2) ds_pairs_fill_batch(d, tr + i, 2, &b);
            for (int i = 0; i < d->n && i < 8; i++) ds_pairs_context_len(d, i);
            ds_batch_free(&b);
        }
        free(tr);
        free(va);
    }
    ds_pairs_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    if (!bytes) bytes = tok_byte(1);
    int mode = data[0] & 3, T = ((data[0] >> 2) & 15) + 1;
    const char *sep = (data[0] & 64) ? "\n\n" : NULL;
    int max_len = 2 + data[1] % 64;
    char path[512];
    fuzz_write("data", data + 2, size - 2, path);
    ds_pairs d;
    memset(&d, 0, sizeof d);
    switch (mode) {
    case 0:
        if (fuzz_note("ds_load_e2e", ds_load_e2e(&d, path)) == 0) pairs(&d, max_len);
        break;
    case 1:
        if (fuzz_note("ds_load_sst2", ds_load_sst2(&d, path, NULL)) == 0) pairs(&d, max_len);
        break;
    case 2:
        if (fuzz_note("ds_load_jsonl", ds_load_jsonl(&d, path)) == 0) pairs(&d, max_len);
        break;
    default: {
        ds_text t;
        if (fuzz_note("ds_text_load", ds_text_load(&t, path, bytes, sep, T)) == 0) {
            ds_batch b;
            ds_batch_init(&b, 2, T);
            int w[2] = {0, t.n_windows - 1};
            ds_text_fill_batch(&t, w, 2, &b);
            ds_batch_free(&b);
            ds_text_free(&t);
        }
    }
    }
    return 0;
}
