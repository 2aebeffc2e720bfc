// libFuzzer target: llama2.c tokenizer.bin reader, encoder and decoder.
// First byte even: the rest is a tokenizer.bin (vocab_size 0 = read to the
// end, or the second byte * 3 when bit 1 of the first byte is set); a loaded
// tokenizer encodes a fixed text and decodes every id.
// First byte odd: the rest is text, encoded (with and without BOS/EOS, and as
// a continuation) and decoded with a fixed valid tokenizer
// (fixtures/llama2c_minimal.bin: <unk>, BOS, EOS, the 256 byte pieces and
// five merges, written by make_corpus.py).
#include "fuzz_util.h"
#include "text/tokenizer.h"

static tokenizer *fixed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        if (!fixed) fixed = tok_load_llama2c(LS_FUZZ_FIXTURES "/llama2c_minimal.bin", 264);
        if (!fixed) abort();
        char *text = fuzz_cstr(data + 1, size - 1);
        fuzz_exercise_tokenizer(fixed, text);
        free(text);
        return 0;
    }
    int vocab = 0;
    if ((data[0] & 2) && size >= 2) {
        vocab = data[1] * 3;
        data++, size--;
    }
    char path[512];
    fuzz_write("tokenizer.bin", data + 1, size - 1, path);
    tokenizer *t = tok_load_llama2c(path, vocab);
    fuzz_note("tok_load_llama2c", t ? 0 : -1);
    if (t) {
        fuzz_exercise_tokenizer(t, "Once upon a time, a little girl named Lily \xe2\x96\x81 <0x0A> caf\xc3\xa9 \xf0\x9f\x98\x80!");
        size_t len;
        for (int id = 0; id < tok_vocab_size(t); id++) {
            tok_piece(t, id);
            tok_decode_piece(t, 1, id, &len);
        }
        tok_free(t);
    }
    return 0;
}
