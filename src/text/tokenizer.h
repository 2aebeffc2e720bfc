// tokenizer: one interface over llama2.c's SentencePiece-style BPE, GPT-2's
// byte-level BPE, BERT's WordPiece and a plain byte tokenizer, so that the
// engine, the datasets and `lorascope tokenize` can use any of them.
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
    TOK_WORDPIECE = 3, // BERT vocab.txt (+ tokenizer_config.json), as HF's BertTokenizer
    TOK_ROBERTA = 4,   // GPT-2's byte-level BPE with RoBERTa's <s> </s> <unk> <pad> <mask>
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

// Reads a BERT WordPiece vocabulary (vocab.txt: one token a line, id = line
// number - 1) and, when config_json is not NULL, its tokenizer_config.json:
//   do_lower_case (default true), strip_accents (null or absent: as
//   do_lower_case), tokenize_chinese_chars (default true), unk_token,
//   cls_token, sep_token, pad_token, mask_token (strings or {"content": s};
//   defaults [UNK], [CLS], [SEP], [PAD], [MASK]).
// [UNK], [CLS] and [SEP] must be in the vocabulary; [PAD] and [MASK] may be
// absent (tok_pad() == -1). BOS = [CLS], EOS = [SEP].
// Refused with a one-line ls_error() naming the file and the line or key: an
// empty vocab.txt, a line that is not UTF-8, holds a NUL or is longer than
// 1024 bytes (after trailing whitespace is trimmed, as HF trims it), a token
// listed twice, malformed JSON or a key of the wrong type.
tokenizer *tok_load_wordpiece(const char *vocab_txt, const char *config_json);

// RoBERTa's tokenizer (HF RobertaTokenizer): GPT-2's byte-level BPE from the
// same two files (HF names them vocab.json and merges.txt), plus the special
// tokens <s> (BOS, CLS), </s> (EOS, SEP), <unk>, <pad>, <mask>. A special
// token missing from the vocabulary (GPT-2's has none of them) is appended
// after it, in that order, as HF adds it: vocab_size grows by the number
// appended. Special tokens in a text are matched whole (HF's <mask> of the
// released RoBERTa also swallows the spaces before it; that is not done).
tokenizer *tok_load_roberta(const char *vocab_json, const char *merges_txt);

// Loads the tokenizer at `path`, whatever its kind:
//   a directory with vocab.txt           WordPiece (+ its tokenizer_config.json)
//   a directory with encoder.json        GPT-2 (+ vocab.bpe)
//   a directory with vocab.json          byte-level BPE (+ merges.txt), HF's names:
//                                        RoBERTa when tokenizer_config.json's
//                                        tokenizer_class or config.json's
//                                        model_type says roberta, else GPT-2
//   a file named vocab.txt               WordPiece (+ tokenizer_config.json beside it)
//   any other file                       llama2.c tokenizer.bin (vocab_size as
//                                        for tok_load_llama2c; 0: to the end)
// This is the one place where a new tokenizer format (GGUF metadata) is
// recognised. Returns NULL with ls_error() set.
tokenizer *tok_load_path(const char *path, int vocab_size);

// The tokenizer of a model: `spec` "bytes" (byte tokenizer, BOS/EOS when
// vocab_size >= 258), another non-empty spec (tok_load_path), or NULL / ""
// to look beside the model (model_path is a file or a directory) for, in
// order: tok<V>.bin (V = vocab_size; when vocab_size is 0 and model_path is
// a llama2.c .bin, V is read from its header), tokenizer.bin, vocab.txt,
// encoder.json, vocab.json. *used_path (may be NULL) gets the path loaded (caller frees).
// Returns NULL with ls_error() set ("no tokenizer beside the model ...").
tokenizer *tok_load_for_model(const char *model_path, const char *spec, int vocab_size, char **used_path);

void tok_free(tokenizer *t);

// ----------------------------------------------------------------------------
// properties

tok_kind tok_type(const tokenizer *t);
int tok_vocab_size(const tokenizer *t);
// BOS / EOS ids, -1 when the tokenizer has none.
int tok_bos(const tokenizer *t);
int tok_eos(const tokenizer *t);
// Padding / unknown-token ids, -1 when the tokenizer has none (WordPiece:
// [PAD] and [UNK]).
int tok_pad(const tokenizer *t);
int tok_unk(const tokenizer *t);

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
//   wordpiece: HF BertTokenizer: special tokens ([CLS], [SEP], [PAD],
//            [MASK], [UNK]) in the text are matched whole, case-sensitively;
//            the rest is cleaned (NUL, U+FFFD and control characters
//            dropped, whitespace -> ' '), CJK ideographs split, accents
//            stripped and lower-cased per the config, split at whitespace
//            and punctuation, then WordPiece (greedy longest match, "##"
//            continuations; [UNK] for a word over 100 characters or one
//            that does not split). Bytes that are not UTF-8 are dropped,
//            as U+FFFD is. bos / eos add [CLS] / [SEP].
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
//   wordpiece: the token, with "##" removed from a continuation and a space
//            in front of any other token that has a predecessor (prev >= 0),
//            so that tok_decode joins words as BERT's WordPiece decoder.
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

// ----------------------------------------------------------------------------
// sequences as a model takes them (classification inputs)

typedef struct {
    int *ids;             // n token ids
    int *type_ids;        // segment of each token: 0 first text, 1 second text (BERT)
    int *attention_mask;  // 1 for a real token, 0 for padding
    int n;
} tok_encoding;

typedef struct {
    int special;     // add the model's special tokens (below)
    int max_length;  // > 0: truncate to at most this many tokens, specials included
    int pad;         // with max_length > 0: pad with tok_pad() up to max_length
} tok_sequence_opts;

// Encodes a text, or a pair (b != NULL), as the model sees it. With special:
//   wordpiece  [CLS] a [SEP]            type ids 0...
//              [CLS] a [SEP] b [SEP]    type ids 0 for [CLS] a [SEP], 1 for b [SEP]
//   llama2c    BOS a (run.c's encoding)   byte: BOS a when it has a BOS
//   roberta    <s> a </s>  or  <s> a </s> </s> b </s>   type ids all 0
//              (RoBERTa has no token types)
//   gpt2       a (GPT-2 adds no special tokens)
// Without special: a, or a followed by b, all type 0. An empty b counts as
// no second text, as in transformers (tokenizer(a, "") == tokenizer(a)).
// Truncation (max_length) drops tokens from the end: for a single text from
// it; for a pair as HF's "longest_first" (tokenizers' truncate_encodings):
// with s the shorter and l the longer length and m = max_length - specials,
// the longer keeps max(s, m - s) tokens, and if the two still exceed m they
// keep m/2 (first text) and m - m/2 (second text) -- or the other way round
// when the first text is the longer one.
// A model with learned positions and a padding index (RoBERTa) numbers
// positions from padding_idx + 1; that is the model's concern, not the
// tokenizer's.
// Returns 0 with out filled (arrays malloc'd, free with tok_encoding_free),
// or -1 with ls_error() set: a pair for a tokenizer without a pair form,
// max_length below the number of special tokens, padding without a pad id.
int tok_encode_sequence(const tokenizer *t, const char *a, const char *b, const tok_sequence_opts *o,
                        tok_encoding *out);
void tok_encoding_free(tok_encoding *e);

#endif
