// tok_internal: what tokenizer.c (the common interface) shares with the two
// BPE implementations (tok_llama2c.c, tok_gpt2.c). Not a public header.
#ifndef LS_TEXT_TOK_INTERNAL_H
#define LS_TEXT_TOK_INTERNAL_H

#include "io/gguf.h"
#include "text/tokenizer.h"

typedef struct l2c_tok l2c_tok;
typedef struct gpt2_tok gpt2_tok;
typedef struct wp_tok wp_tok;

struct tokenizer {
    tok_kind kind;
    int vocab_size;
    int bos, eos;        // -1: none (WordPiece: [CLS], [SEP]; RoBERTa: <s>, </s>)
    int pad, unk;        // -1: none
    int add_bos;         // the model's single-text form starts with BOS (llama2c, byte with BOS)
    l2c_tok *l2c;        // TOK_LLAMA2C
    gpt2_tok *gpt2;      // TOK_GPT2, TOK_ROBERTA
    wp_tok *wp;          // TOK_WORDPIECE
    // TOK_ROBERTA: <s> </s> <unk> <pad> <mask>, matched whole in a text; the
    // ones the BPE vocabulary lacks get ids n_bpe, n_bpe + 1, ... (as HF adds them)
    int n_bpe;
    int special_id[5];
    char byte_pieces[2 * 258];  // TOK_BYTE: "b\0" per byte, "" for BOS/EOS
};

// Growable id buffer used by the encoders.
typedef struct {
    int *ids;
    int n, cap;
} tok_ids;

void tok_ids_push(tok_ids *v, int id);

// tok_llama2c.c
l2c_tok *l2c_load(const char *path, int vocab_size, int *n_vocab);
void l2c_free(l2c_tok *l);
// Appends run.c's encoding of text to out: BOS (id 1) when bos, the " "
// piece for a non-empty text when dummy_prefix, characters, merges; no EOS.
void l2c_encode(const l2c_tok *l, const char *text, int bos, int dummy_prefix, tok_ids *out);
const char *l2c_decode(const l2c_tok *l, int prev, int id, size_t *len);
// A SentencePiece vocabulary from GGUF metadata (pieces spell spaces U+2581).
typedef struct {
    int n;
    const gguf_str *tokens;
    const float *scores;   // n, or NULL (all 0)
    const int *types;      // n llama.cpp token types, or NULL (byte pieces found by their form)
    int bos, unk;          // ids (bos -1: none)
    int add_prefix;        // U+2581 in front of a text that does not start with a space
} l2c_spec;
l2c_tok *l2c_build(const l2c_spec *spec, const char *src);
// transformers' LlamaTokenizer encoding of text (no BOS) with such a
// vocabulary; at_start: the text starts a sequence (gets the U+2581 prefix).
void l2c_encode_spm(const l2c_tok *l, const char *text, int at_start, tok_ids *out);
int l2c_is_spm(const l2c_tok *l);
const char *l2c_piece(const l2c_tok *l, int id);

// tok_gguf.c: tok_load_gguf on an open file (f stays the caller's).
tokenizer *tok_from_gguf(const gguf_file *f, const char *pre);

// tok_gpt2.c
gpt2_tok *gpt2_load(const char *encoder_json, const char *vocab_bpe, int *n_vocab, int *eot);
// From in-memory tokens (byte-to-unicode alphabet; a token outside it stands
// for its own UTF-8 bytes) and merges ("left right", rank = order). src names
// the origin in messages. NULL with ls_error() set.
gpt2_tok *gpt2_build(int n, const gguf_str *tokens, int n_merges, const gguf_str *merges, const char *src);
void gpt2_free(gpt2_tok *g);
// Pre-tokenization regexes (GGUF tokenizer.ggml.pre), see tok_gpt2.c.
typedef enum { GPT2_PRE_GPT2 = 0, GPT2_PRE_SMOLLM, GPT2_PRE_LLAMA3, GPT2_PRE_QWEN2 } gpt2_pre;
void gpt2_set_pre(gpt2_tok *g, gpt2_pre pre);
// A token matched whole in the text (by its text) before pre-tokenization.
void gpt2_add_special(gpt2_tok *g, int id, const char *text, size_t len);
// 1 if every character of s[0..n) belongs to the byte-to-unicode alphabet.
int gpt2_text_in_alphabet(const char *s, size_t n);
// Appends the encoding of text; with special, special tokens are matched whole.
void gpt2_encode(const gpt2_tok *g, const char *text, int special, tok_ids *out);
const char *gpt2_piece(const gpt2_tok *g, int id, size_t *len);
// Id of the token whose bytes are s (linear scan, for load time), or -1.
int gpt2_find(const gpt2_tok *g, const char *s);

// tok_wordpiece.c
// special_ids: [UNK], [CLS], [SEP], [PAD], [MASK] (-1 for an absent [PAD] / [MASK]).
wp_tok *wp_load(const char *vocab_txt, const char *config_json, int *n_vocab, int special_ids[5]);
void wp_free(wp_tok *w);
void wp_encode(const wp_tok *w, const char *text, tok_ids *out);
const char *wp_decode(const wp_tok *w, int prev, int id, size_t *len);
const char *wp_piece(const wp_tok *w, int id);

#endif
