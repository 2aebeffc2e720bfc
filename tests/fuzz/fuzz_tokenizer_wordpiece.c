// libFuzzer target: WordPiece vocab.txt + tokenizer_config.json reader, the
// WordPiece encoder, and model-shaped sequences (pairs, truncation, padding).
// First byte even: the rest is split at the first 0xFF byte into vocab.txt
// and tokenizer_config.json (none without a 0xFF); a loaded tokenizer
// encodes a fixed text and a fixed pair and decodes every id.
// First byte odd: the rest is text (a pair when it holds a 0xFF byte),
// encoded with a fixed valid tokenizer -- WordPiece over
// fixtures/wordpiece_vocab.txt, or with bit 1 set RoBERTa over the GPT-2
// fixture files -- and with bits 2..7 as max_length (0: none), padded when
// bit 6 is set.
#include "fuzz_util.h"
#include "text/tokenizer.h"

static tokenizer *fixed_wp, *fixed_roberta;

// Every sequence form of a (and b): with and without specials, truncated and padded.
static void exercise_sequences(const tokenizer *t, const char *a, const char *b, int max_length, int pad) {
    for (int special = 0; special < 2; special++) {
        tok_sequence_opts o = {special, max_length, pad};
        tok_encoding e;
        if (tok_encode_sequence(t, a, b, &o, &e) == 0) {
            if (max_length > 0 && e.n > max_length) abort();          // truncation must hold
            if (max_length > 0 && pad && e.n != max_length) abort();  // and padding fill up
            for (int i = 0; i < e.n; i++)
                if (e.ids[i] < 0 || e.ids[i] >= tok_vocab_size(t)) abort();
            tok_encoding_free(&e);
        }
    }
}

static void text_mode(uint8_t flags, const uint8_t *data, size_t size) {
    if (!fixed_wp) fixed_wp = tok_load_wordpiece(LS_FUZZ_FIXTURES "/wordpiece_vocab.txt", NULL);
    if (!fixed_roberta)
        fixed_roberta = tok_load_roberta(LS_FUZZ_FIXTURES "/gpt2_encoder.json", LS_FUZZ_FIXTURES "/gpt2_vocab.bpe");
    if (!fixed_wp || !fixed_roberta) abort();
    const tokenizer *t = flags & 2 ? fixed_roberta : fixed_wp;
    const uint8_t *split = memchr(data, 0xFF, size);
    size_t na = split ? (size_t)(split - data) : size;
    char *a = fuzz_cstr(data, na);
    char *b = split ? fuzz_cstr(split + 1, size - na - 1) : NULL;
    fuzz_exercise_tokenizer(t, a);
    exercise_sequences(t, a, b, (flags >> 2) & 15, (flags >> 6) & 1);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        text_mode(data[0], data + 1, size - 1);
        return 0;
    }
    data++, size--;
    const uint8_t *split = memchr(data, 0xFF, size);
    size_t n_vocab = split ? (size_t)(split - data) : size;
    char vocab[512], cfg[512];
    fuzz_write("vocab.txt", data, n_vocab, vocab);
    if (split) fuzz_write("tokenizer_config.json", split + 1, size - n_vocab - 1, cfg);
    tokenizer *t = tok_load_wordpiece(vocab, split ? cfg : NULL);
    fuzz_note("tok_load_wordpiece", t ? 0 : -1);
    if (t) {
        const char *text = "Hello, WORLD! Unaffable caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 [SEP] [CLS]x \xf0\x9f\x98\x80\t";
        fuzz_exercise_tokenizer(t, text);
        exercise_sequences(t, text, "a second text, running", 9, 1);
        size_t len;
        for (int id = 0; id < tok_vocab_size(t); id++) {
            tok_piece(t, id);
            tok_decode_piece(t, -1, id, &len);
            tok_decode_piece(t, 0, id, &len);
        }
        tok_free(t);
    }
    return 0;
}
