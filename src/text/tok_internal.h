// tok_internal: what tokenizer.c (the common interface) shares with the two
// BPE implementations (tok_llama2c.c, tok_gpt2.c). Not a public header.
#ifndef LS_TEXT_TOK_INTERNAL_H
#define LS_TEXT_TOK_INTERNAL_H

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
const char *l2c_piece(const l2c_tok *l, int id);

// tok_gpt2.c
gpt2_tok *gpt2_load(const char *encoder_json, const char *vocab_bpe, int *n_vocab, int *eot);
void gpt2_free(gpt2_tok *g);
void gpt2_encode(const gpt2_tok *g, const char *text, tok_ids *out);
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
