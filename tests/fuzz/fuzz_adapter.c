// libFuzzer target: PEFT adapter directories and llama2.c checkpoints.
// The input is split at the first 0xFF byte into adapter_config.json and
// adapter_model.safetensors (both written to a private directory in /dev/shm
// or /tmp); the whole input is also tried as a llama2.c .bin checkpoint, and
// as a base directory's model.safetensors.index.json (io/hf_weights.h) whose
// shards do not exist or are the fuzzed safetensors part.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/adapter.h"
#include "io/checkpoint.h"
#include "io/hf_weights.h"

static char dir[256];

static void write_file(const char *name, const uint8_t *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) abort();
    if (n) fwrite(p, 1, n, fp);
    fclose(fp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/lorascope-fuzz-%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
                 (long)getpid());
        char cmd[300];
        snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
        if (system(cmd) != 0) abort();
    }
    const uint8_t *split = memchr(data, 0xFF, size);
    size_t n_cfg = split ? (size_t)(split - data) : size;
    write_file("adapter_config.json", data, n_cfg);
    write_file("adapter_model.safetensors", split ? split + 1 : data, split ? size - n_cfg - 1 : 0);
    lora_adapter a;
    if (adapter_load(&a, dir) == 0) {
        for (int i = 0; i < a.n_modules; i++) {
            int row0, rows;
            const adapter_site *m = a.generic ? NULL : adapter_resolve(&a, a.modules[i].layer, "q", &row0, &rows);
            if (m && (size_t)m->r * m->d_in < 4096 && (size_t)rows * m->r < 4096) free(adapter_delta_weight(m, row0, rows));
            adapter_rows sel;
            adapter_set_heads(&a, 2, 1, i & 1);
            const char *names[] = {"q", "v", "gate", "decoder.q", a.modules[i].path};
            for (int k = 0; k < 5; k++) {
                m = adapter_resolve_any(&a, a.modules[i].layer, names[k], &sel);
                if (m && adapter_row_at(&sel, sel.rows * sel.n_groups - 1) >= m->d_out) abort();
            }
        }
        adapter_free(&a);
    }
    // the input's first part as a sharded index naming adapter_model.safetensors or absent shards
    write_file("model.safetensors.index.json", data, n_cfg);
    hf_weights w;
    if (hf_weights_open(&w, dir) == 0) hf_weights_close(&w);
    char idx[512];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    unlink(idx);
    write_file("model.bin", data, size);
    char path[512];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    ls_checkpoint ck;
    if (size < (1 << 16) && ckpt_load(&ck, path) == 0) ckpt_free(&ck);
    return 0;
}
