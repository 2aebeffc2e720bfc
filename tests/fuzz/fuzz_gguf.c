// libFuzzer target: the GGUF reader must reject or accept any bytes without
// crashing; on an accepted file every metadata getter, every tensor's
// dequantization, the llama checkpoint and the tokenizer built from the
// metadata must stay inside the buffer (errors are fine, crashes are not).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/util.h"
#include "io/gguf.h"
#include "io/gguf_model.h"
#include "text/tok_internal.h"

static void exercise_metadata(const gguf_file *f) {
    for (int i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        int64_t v;
        double x;
        int b;
        gguf_str s;
        const gguf_kv *arr;
        (void)gguf_get_int(f, kv->key, INT64_MIN, INT64_MAX, &v);
        (void)gguf_get_float(f, kv->key, -1e300, 1e300, &x);
        (void)gguf_get_bool(f, kv->key, &b);
        (void)gguf_get_string(f, kv->key, &s);
        if (!gguf_get_array(f, kv->key, GGUF_INT64, &arr) && arr->n) (void)gguf_array_int(arr, arr->n - 1);
        if (!gguf_get_array(f, kv->key, GGUF_FLOAT64, &arr) && arr->n) (void)gguf_array_float(arr, arr->n - 1);
        if (!gguf_get_array(f, kv->key, GGUF_STRING, &arr) && arr->n) {
            volatile char sink = arr->strs[arr->n - 1].len ? arr->strs[arr->n - 1].ptr[0] : 0;
            (void)sink;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file f;
    if (gguf_open_memory(&f, data, size, "fuzz.gguf") != 0) return 0;
    exercise_metadata(&f);
    for (int i = 0; i < f.n_tensors; i++) {
        const gguf_tensor *t = &f.tensors[i];
        if (t->numel > (1 << 20)) continue; // spans are checked; skip huge decodes for speed
        float *x = gguf_load_float(&f, t);
        free(x);
    }
    ls_checkpoint ck;
    if (gguf_read_checkpoint(&ck, &f) == 0) ckpt_free(&ck);
    tokenizer *tok = tok_from_gguf(&f, NULL);
    if (tok) {
        int n;
        int *ids = tok_encode(tok, "Hello 123 <|im_start|> wörld\n\n  x", 1, 1, &n);
        char *back = tok_decode(tok, -1, ids, n, NULL);
        free(back);
        free(ids);
        tok_free(tok);
    }
    gguf_close(&f);
    return 0;
}
