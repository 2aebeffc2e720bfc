// libFuzzer target: GPT-2 encoder.json + vocab.bpe reader and byte-level BPE.
// First byte even: the rest is split at the first 0xFF byte into encoder.json
// and vocab.bpe; a loaded tokenizer encodes a fixed text and decodes every id.
// First byte odd: the rest is text, encoded and decoded with a fixed valid
// tokenizer (fixtures/gpt2_encoder.json + gpt2_vocab.bpe: the 256 byte
// symbols, a few merges and <|endoftext|>).
#include "fuzz_util.h"
#include "text/tokenizer.h"

static tokenizer *fixed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        if (!fixed) fixed = tok_load_gpt2(LS_FUZZ_FIXTURES "/gpt2_encoder.json", LS_FUZZ_FIXTURES "/gpt2_vocab.bpe");
        if (!fixed) abort();
        char *text = fuzz_cstr(data + 1, size - 1);
        fuzz_exercise_tokenizer(fixed, text);
        free(text);
        return 0;
    }
    data++, size--;
    const uint8_t *split = memchr(data, 0xFF, size);
    size_t n_enc = split ? (size_t)(split - data) : size;
    char enc[512], bpe[512];
    fuzz_write("encoder.json", data, n_enc, enc);
    fuzz_write("vocab.bpe", split ? split + 1 : data, split ? size - n_enc - 1 : 0, bpe);
    tokenizer *t = tok_load_gpt2(enc, bpe);
    fuzz_note("tok_load_gpt2", t ? 0 : -1);
    if (t) {
        fuzz_exercise_tokenizer(t, "Hello world, it's 1234 <|endoftext|>  caf\xc3\xa9 \xf0\x9f\x98\x80\n\n  x");
        size_t len;
        for (int id = 0; id < tok_vocab_size(t); id++) {
            tok_piece(t, id);
            tok_decode_piece(t, -1, id, &len);
        }
        tok_free(t);
    }
    return 0;
}
