// tokenizer: one interface over llama2.c's SentencePiece-style BPE, GPT-2's
// byte-level BPE and a plain byte tokenizer, so that the engine and the
// datasets can use any of them.
//
// Token ids are int. Text is UTF-8, NUL-terminated (a text cannot hold a NUL
// byte). Decoded pieces are byte strings with an explicit length, because a
// byte token can decode to a NUL byte or to part of a UTF-8 character.
#ifndef LS_TEXT_TOKENIZER_H
#define LS_TEXT_TOKENIZER_H

#include <stddef.h>

typedef enum {
    TOK_LLAMA2C = 0,   // llama2.c tokenizer.bin (SentencePiece scores, byte fallback)
    TOK_GPT2 = 1,      // GPT-2 encoder.json + vocab.bpe (byte-level BPE by merge rank)
    TOK_BYTE = 2,      // one token per byte
} tok_kind;

typedef struct tokenizer tokenizer;  // opaque; build with tok_load_* / tok_byte, free with tok_free

// ----------------------------------------------------------------------------
// build / free

// Reads a llama2.c tokenizer.bin. Layout (little-endian, written down once):
//   int32 max_token_length
//   then per token: float32 score, int32 length, `length` bytes (no NUL)
// The file does not store the number of tokens (run.c takes it from the
// model header): pass the model's vocab_size, or 0 to read records up to the
// end of the file. BOS = 1, EOS = 2, byte b falls back to id b + 3.
// Returns a tokenizer owned by the caller, or NULL with ls_error() naming the
// file, the field, its byte offset, and what was expected vs found.
tokenizer *tok_load_llama2c(const char *path, int vocab_size);

// Reads GPT-2's vocabulary (encoder.json: {"token": id, ...}, tokens written
// in GPT-2's byte-to-unicode alphabet) and merges (vocab.bpe: a "#version"
// line, then one "left right" pair per line, rank = line order).
// BOS = EOS = the id of "<|endoftext|>" (HF's convention), -1 if absent.
// Returns NULL with ls_error() set (file, line or key, expected vs found).
tokenizer *tok_load_gpt2(const char *encoder_json, const char *vocab_bpe);

// The tokenizer in a GGUF file's metadata (text/tok_gguf.c), encoding as
// Hugging Face transformers builds it from the same metadata:
//   tokenizer.ggml.model "gpt2": byte-level BPE from tokenizer.ggml.tokens +
//     merges, with the pre-tokenizer tokenizer.ggml.pre names (gpt2, smollm,
//     llama-bpe, qwen2 and their aliases; pre, if not NULL, overrides it);
//     kind TOK_GPT2;
//   "llama": SentencePiece pieces (U+2581 for spaces) merged by score, byte
//     fallback to <0xXX> pieces, U+2581 prefix (add_space_prefix); kind
//     TOK_LLAMA2C.
// Control and user-defined tokens are matched whole in the text. EOS from
// the metadata; BOS too, but only when tokenizer.ggml.add_bos_token is true
// (default: false for gpt2, true for llama), else tok_bos() is -1: the
// model's sequences do not start with it. NULL with ls_error() naming the
// file and the key.
tokenizer *tok_load_gguf(const char *path, const char *pre);

// Bytes as tokens: ids 0..255. With with_bos_eos, BOS = 256 and EOS = 257
// (vocab 258); without, vocab 256 and no BOS/EOS (tok_bos() == -1).
tokenizer *tok_byte(int with_bos_eos);

void tok_free(tokenizer *t);

// ----------------------------------------------------------------------------
// properties

tok_kind tok_type(const tokenizer *t);
int tok_vocab_size(const tokenizer *t);
// BOS / EOS ids, -1 when the tokenizer has none.
int tok_bos(const tokenizer *t);
int tok_eos(const tokenizer *t);

// ----------------------------------------------------------------------------
// encode / decode

// Encodes `text` as the start of a sequence. bos / eos (0 or 1) add BOS in
// front and EOS at the end (ignored when the tokenizer has none).
//   llama2c: run.c's encode exactly: BOS, the dummy-prefix piece (id of " ")
//            for a non-empty text, UTF-8 characters (unknown ones as byte
//            tokens), then repeatedly merge the adjacent pair whose
//            concatenation is in the vocab with the highest score (leftmost
//            on ties), then EOS. O(n log n) with a heap, same result as
//            run.c's O(n^2) scan.
//   gpt2:    the GPT-2 pre-tokenization regex, byte-to-unicode, BPE by merge
//            rank; "<|endoftext|>" in the text is ordinary characters.
//   byte:    one id per byte.
// Returns a malloc'd array (caller frees) and its length in *n_tokens.
int *tok_encode(const tokenizer *t, const char *text, int bos, int eos, int *n_tokens);

// Encodes `text` as a continuation of earlier text (a completion after its
// context, a label word after a prompt): like tok_encode without BOS/EOS,
// except that llama2c adds no dummy prefix (SentencePiece adds it only at the
// start of a text), so " positive" encodes as the pieces that follow a prompt.
int *tok_encode_continuation(const tokenizer *t, const char *text, int *n_tokens);

// The bytes that token `id` prints when it follows token `prev` (-1: none).
//   llama2c: run.c's decode: after BOS a leading space is dropped, "<0xXX>"
//            pieces become the raw byte; other pieces (also BOS "\n<s>\n")
//            are returned as they are.
//   gpt2:    the token's bytes ("<|endoftext|>" for the special token).
//   byte:    the byte; BOS / EOS decode to "".
// Returns a pointer into the tokenizer (valid until tok_free) and the byte
// count in *len (len may be NULL; the bytes are also NUL-terminated). An id
// outside [0, vocab) decodes to "".
const char *tok_decode_piece(const tokenizer *t, int prev, int id, size_t *len);

// Concatenates tok_decode_piece over ids[0..n), the first one following
// `prev` (pass BOS to decode "everything after BOS" as llama2.c prints it).
// Returns a malloc'd NUL-terminated string (caller frees); *len (may be NULL)
// gets its byte count.
char *tok_decode(const tokenizer *t, int prev, const int *ids, int n, size_t *len);

// The vocabulary piece of `id` as stored (llama2c: the raw piece, e.g.
// "<0x41>"; gpt2: the token's bytes), or NULL for an id outside the vocab.
const char *tok_piece(const tokenizer *t, int id);

#endif
