/* librwkv: RWKV-7 ("Goose") inference, C API.
 *
 * Handles
 *   rwkv_model    immutable weights on one device. May be shared by several contexts and threads.
 *   rwkv_context  scratch buffers and threads to run a model. Use from one thread at a time.
 *   rwkv_state    one sequence's recurrent state (per layer: time-mix shift [C], WKV [H][64][64] fp32,
 *                 channel-mix shift [C]). Belongs to the model it was created for.
 *
 * Errors
 *   Every fallible call returns an rwkv_status. On failure, rwkv_last_error_message() returns a message for
 *   the calling thread that names what went wrong and where. Results go through out-parameters with explicit
 *   sizes. Passing NULL where a handle or buffer is required returns RWKV_STATUS_INVALID_ARGUMENT.
 *   Every *_free(NULL) is a no-op.
 *
 * The library never prints: it reports through the log callback (default: warnings and errors to stderr).
 */
#ifndef RWKV_RWKV_H
#define RWKV_RWKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define RWKV_API __declspec(dllexport)
#else
#define RWKV_API __attribute__((visibility("default")))
#endif

/* ---- status, errors, logging ------------------------------------------------------------------------------ */

typedef enum rwkv_status {
    RWKV_STATUS_OK = 0,
    RWKV_STATUS_INVALID_ARGUMENT = 1, /* NULL handle, size too small, token id >= vocab, ... */
    RWKV_STATUS_IO_ERROR = 2,         /* a file could not be opened, read or written */
    RWKV_STATUS_FORMAT_ERROR = 3,     /* a file is malformed: bad zip, forbidden pickle global, wrong shape, ... */
    RWKV_STATUS_UNSUPPORTED = 4,      /* a well-formed input this build cannot run (model variant, backend) */
    RWKV_STATUS_OUT_OF_MEMORY = 5,
    RWKV_STATUS_BACKEND_ERROR = 6, /* a device call failed */
    RWKV_STATUS_INTERNAL = 7,      /* a bug in librwkv */
    RWKV_STATUS_CANCELLED = 8      /* a callback asked to stop */
} rwkv_status;

/* A static English name for a status ("ok", "invalid argument", ...). Never NULL. */
RWKV_API const char* rwkv_status_string(rwkv_status status);

/* The message of the last failed call on this thread ("" if none). Valid until the next failing call on this
 * thread. */
RWKV_API const char* rwkv_last_error_message(void);

typedef enum rwkv_log_level {
    RWKV_LOG_DEBUG = 0,
    RWKV_LOG_INFO = 1,
    RWKV_LOG_WARN = 2,
    RWKV_LOG_ERROR = 3
} rwkv_log_level;

typedef void (*rwkv_log_callback)(rwkv_log_level level, const char* message, void* user_data);

/* Route library messages to `callback` (NULL restores the default: WARN and ERROR to stderr). Global; set it
 * before loading models. */
RWKV_API void rwkv_log_set(rwkv_log_callback callback, void* user_data);

/* "MAJOR.MINOR.PATCH". */
RWKV_API const char* rwkv_version(void);

/* One line describing the build and the machine: compiler, CPU features, whether CUDA was compiled in and how
 * many devices are visible. Static storage. */
RWKV_API const char* rwkv_system_info(void);

/* ---- model ------------------------------------------------------------------------------------------------- */

typedef struct rwkv_model rwkv_model;
typedef struct rwkv_context rwkv_context;
typedef struct rwkv_state rwkv_state;

typedef enum rwkv_backend {
    RWKV_BACKEND_AUTO = 0, /* CUDA when compiled in and a device is present, else CPU */
    RWKV_BACKEND_CPU = 1,
    RWKV_BACKEND_CUDA = 2
} rwkv_backend;

typedef enum rwkv_dtype { RWKV_DTYPE_F32 = 0, RWKV_DTYPE_F16 = 1, RWKV_DTYPE_BF16 = 2 } rwkv_dtype;

typedef enum rwkv_file_format { RWKV_FORMAT_PTH = 0, RWKV_FORMAT_SAFETENSORS = 1 } rwkv_file_format;

typedef struct rwkv_model_params {
    rwkv_backend backend; /* default RWKV_BACKEND_AUTO */
    int n_threads;        /* CPU worker threads for contexts of this model; 0 = all cores (default) */
} rwkv_model_params;

RWKV_API rwkv_model_params rwkv_model_default_params(void);

/* Load a .pth (torch.save zip) or .safetensors RWKV-7 checkpoint, native BlinkDL or Hugging Face (fla) names.
 * The file is memory-mapped; tensors are used in place. `params` may be NULL for the defaults.
 * Returns IO_ERROR (cannot read), FORMAT_ERROR (malformed, missing tensor, wrong shape) or UNSUPPORTED
 * (a variant with different math: DeepEmbed, Pile vocabulary; a backend not available). */
RWKV_API rwkv_status rwkv_model_load(const char* path, const rwkv_model_params* params, rwkv_model** out_model);
RWKV_API void rwkv_model_free(rwkv_model* model);

/* A model of a real RWKV-7 shape with deterministic random weights, built in memory (for benchmarks and tests).
 * Presets: "tiny" (L2 C128, V256), "0.1b", "0.4b", "1.5b", "2.9b", "7.2b", "13.3b" (V 65536). Weights are drawn
 * at realistic scales; ffn_sparsity >= 0 biases the FFN key weights so that this fraction of the ReLU²
 * pre-activations is negative (trained models: ~0.9), < 0 leaves the natural ~0.5 of random weights. */
typedef struct rwkv_synthetic_params {
    const char* preset;  /* default "0.1b" */
    rwkv_dtype dtype;    /* default BF16 */
    float ffn_sparsity;  /* default -1 (natural) */
    uint64_t seed;       /* default 1 */
    int n_vocab;         /* 0 = the preset's (65536; 256 for "tiny") */
} rwkv_synthetic_params;

RWKV_API rwkv_synthetic_params rwkv_synthetic_default_params(void);
RWKV_API rwkv_status rwkv_model_load_synthetic(const rwkv_synthetic_params* synthetic, const rwkv_model_params* params,
                                               rwkv_model** out_model);

typedef struct rwkv_model_info {
    rwkv_file_format format;
    rwkv_dtype weight_dtype;             /* dtype of the large matrices as stored */
    rwkv_backend backend;                /* the backend actually used */
    int n_layer;                         /* L */
    int n_embd;                          /* C */
    int n_head;                          /* H = C / head_size */
    int head_size;                       /* N = 64 */
    int n_vocab;                         /* V, usually 65536 */
    int n_ffn;                           /* F, usually 4C */
    int d_decay, d_aaa, d_value, d_gate; /* LoRA widths Dw, Da, Dv, Dg */
    int64_t n_params;                    /* parameters in the file's RWKV tensors */
    int64_t n_bytes;                     /* bytes of those tensors as stored */
    int64_t state_bytes;                 /* bytes of one rwkv_state's data (fp32): L*(2C + H*64*64)*4 */
} rwkv_model_info;

RWKV_API rwkv_status rwkv_model_get_info(const rwkv_model* model, rwkv_model_info* out_info);

/* ---- context ----------------------------------------------------------------------------------------------- */

typedef struct rwkv_context_params {
    int n_threads;      /* 0 = the model's n_threads */
    int max_seq_tokens; /* tokens per forward chunk in rwkv_eval (scratch is sized for it); default 256 */
} rwkv_context_params;

RWKV_API rwkv_context_params rwkv_context_default_params(void);

/* Scratch buffers and worker threads for one caller. `params` may be NULL. Thread-safety: a context may be used
 * by one thread at a time; several contexts may use one model concurrently. */
RWKV_API rwkv_status rwkv_context_init(const rwkv_model* model, const rwkv_context_params* params,
                                       rwkv_context** out_ctx);
RWKV_API void rwkv_context_free(rwkv_context* ctx);

/* ---- state ------------------------------------------------------------------------------------------------- */

/* A zero state for `model`. */
RWKV_API rwkv_status rwkv_state_init(const rwkv_model* model, rwkv_state** out_state);
RWKV_API void rwkv_state_free(rwkv_state* state);
RWKV_API rwkv_status rwkv_state_reset(rwkv_state* state);
/* dst <- src (both for the same model). Use it to branch a conversation. */
RWKV_API rwkv_status rwkv_state_copy(rwkv_state* dst, const rwkv_state* src);
/* Number of floats in the state's data: L * (2C + H*64*64). */
RWKV_API size_t rwkv_state_size(const rwkv_state* state);
/* Copy the state out / in as floats, per layer [att_shift C][wkv H*64*64 (head, value, key)][ffn_shift C].
 * `n_floats` must equal rwkv_state_size(). */
RWKV_API rwkv_status rwkv_state_get_data(const rwkv_state* state, float* out, size_t n_floats);
RWKV_API rwkv_status rwkv_state_set_data(rwkv_state* state, const float* data, size_t n_floats);
/* Versioned binary file with the model's shape fingerprint and a checksum; written atomically (temporary file in
 * the same directory, flushed, renamed). Loading a state of another model shape is FORMAT_ERROR and leaves
 * `state` untouched. */
RWKV_API rwkv_status rwkv_state_save(const rwkv_state* state, const char* path);
RWKV_API rwkv_status rwkv_state_load(rwkv_state* state, const char* path);
/* The same bytes as the state file, in memory (to keep a conversation in a database, a save file, ...).
 * Sets *n_bytes; writes when capacity >= *n_bytes, else INVALID_ARGUMENT; buffer = NULL with capacity 0 is a size
 * query. Deserialising checks everything rwkv_state_load checks and leaves `state` untouched on error. */
RWKV_API rwkv_status rwkv_state_serialize(const rwkv_state* state, void* buffer, size_t capacity, size_t* n_bytes);
RWKV_API rwkv_status rwkv_state_deserialize(rwkv_state* state, const void* buffer, size_t n_bytes);
/* Initialise from a state-tuning checkpoint (RWKV-PEFT: blocks.N.att.time_state [H,64,64], .pth or
 * .safetensors): WKV = time_state (no transpose), shifts = 0. */
RWKV_API rwkv_status rwkv_state_load_tuning(rwkv_state* state, const char* path);

/* ---- evaluation -------------------------------------------------------------------------------------------- */

typedef enum rwkv_logits_mode {
    RWKV_LOGITS_NONE = 0, /* only advance the state */
    RWKV_LOGITS_LAST = 1, /* logits after the last token: n_vocab floats */
    RWKV_LOGITS_ALL = 2   /* logits after every token: n_tokens * n_vocab floats, row-major */
} rwkv_logits_mode;

/* Feed `n_tokens` tokens into `state` in sequence mode (chunks of max_seq_tokens), writing logits as `mode`
 * says into `logits` (capacity `n_logits` floats; may be NULL for RWKV_LOGITS_NONE). A token id >= n_vocab is
 * INVALID_ARGUMENT and leaves the state untouched. */
RWKV_API rwkv_status rwkv_eval(rwkv_context* ctx, rwkv_state* state, const int32_t* tokens, size_t n_tokens,
                               rwkv_logits_mode mode, float* logits, size_t n_logits);

/* One token in one-token (decode) mode; `logits` (n_vocab floats) may be NULL. */
RWKV_API rwkv_status rwkv_decode(rwkv_context* ctx, rwkv_state* state, int32_t token, float* logits, size_t n_logits);

/* ---- tokenizer (RWKV World vocabulary) --------------------------------------------------------------------- */

typedef struct rwkv_tokenizer rwkv_tokenizer;

/* Load a vocabulary file (rwkv_vocab_v20230424.txt format). NULL path: the default search — $RWKV_VOCAB, then
 * share/rwkv/ beside the executable's directory (../share/rwkv) and the install prefix. A malformed file is
 * FORMAT_ERROR naming the line. Thread-safety: a loaded tokenizer is immutable and may be shared. */
RWKV_API rwkv_status rwkv_tokenizer_load(const char* path, rwkv_tokenizer** out_tokenizer);
RWKV_API void rwkv_tokenizer_free(rwkv_tokenizer* tokenizer);
/* Ids with a meaning: 65530 for World (0 = end of text, 1..65529 from the file). */
RWKV_API size_t rwkv_tokenizer_vocab_size(const rwkv_tokenizer* tokenizer);

/* Greedy longest-match tokenization of `n_bytes` bytes (UTF-8 text; any bytes are accepted). Sets *n_ids to the
 * number of ids; writes them when `capacity` >= *n_ids, else returns INVALID_ARGUMENT ("buffer too small")
 * and writes nothing. ids = NULL with capacity 0 is a size query: it only sets *n_ids and returns OK. */
RWKV_API rwkv_status rwkv_tokenizer_encode(const rwkv_tokenizer* tokenizer, const char* text, size_t n_bytes,
                                           int32_t* ids, size_t capacity, size_t* n_ids);
/* The bytes of `n_ids` tokens (may be invalid UTF-8 when a character is split). Sets *n_bytes; writes the bytes
 * (no terminator) when `capacity` >= *n_bytes, else INVALID_ARGUMENT; text = NULL with capacity 0 is a size
 * query. Ids < 0 or >= 65536 are INVALID_ARGUMENT. */
RWKV_API rwkv_status rwkv_tokenizer_decode(const rwkv_tokenizer* tokenizer, const int32_t* ids, size_t n_ids,
                                           char* text, size_t capacity, size_t* n_bytes);

/* Offset of the first byte of `text` that is not part of well-formed UTF-8, or n_bytes when all of it is. */
RWKV_API size_t rwkv_utf8_check(const char* text, size_t n_bytes);

/* ---- sampler ----------------------------------------------------------------------------------------------- */

typedef struct rwkv_sampler rwkv_sampler;

/* The reference (ChatRWKV PIPELINE) convention, see docs/sampling.md: penalties on logits, softmax, top-p then
 * top-k then min-p on the untempered probabilities, then temperature as a power on the probabilities. */
typedef struct rwkv_sampler_params {
    float temperature;       /* >= 0; 0 = greedy. Default 1.0 */
    float top_p;             /* [0, 1]. Default 0.85 */
    int top_k;               /* 0 = off. Default 0 */
    float min_p;             /* [0, 1]; 0 = off. Default 0 */
    float presence_penalty;  /* default 0.2 */
    float frequency_penalty; /* default 0.2 */
    float penalty_decay;     /* [0, 1]; default 0.996 */
    uint64_t seed;           /* same seed, same choices */
} rwkv_sampler_params;

RWKV_API rwkv_sampler_params rwkv_sampler_default_params(void);
/* A sampler for logits of n_vocab entries. Bad parameters are INVALID_ARGUMENT naming the parameter. */
RWKV_API rwkv_status rwkv_sampler_init(const rwkv_sampler_params* params, int n_vocab, rwkv_sampler** out_sampler);
RWKV_API void rwkv_sampler_free(rwkv_sampler* sampler);
RWKV_API rwkv_status rwkv_sampler_set_params(rwkv_sampler* sampler, const rwkv_sampler_params* params);
/* Tokens that are never sampled (their logit becomes -inf). Replaces the previous list. */
RWKV_API rwkv_status rwkv_sampler_set_banned(rwkv_sampler* sampler, const int32_t* ids, size_t n_ids);
/* Added to the logits of the given ids before sampling. Replaces the previous bias. */
RWKV_API rwkv_status rwkv_sampler_set_bias(rwkv_sampler* sampler, const int32_t* ids, const float* bias,
                                           size_t n);
/* Apply bans, bias and penalties to `logits` (n_vocab floats, modified in place) and choose a token. */
RWKV_API rwkv_status rwkv_sampler_sample(rwkv_sampler* sampler, float* logits, size_t n_logits, int32_t* out_token);
/* Record a generated token for the penalties. `tokenizer` (may be NULL) lets whitespace/digit tokens pay the
 * presence penalty only, as the reference pipeline does. */
RWKV_API rwkv_status rwkv_sampler_accept(rwkv_sampler* sampler, const rwkv_tokenizer* tokenizer, int32_t token);
/* Forget the penalty occurrences (start of a new reply). */
RWKV_API rwkv_status rwkv_sampler_reset(rwkv_sampler* sampler);

/* ---- generation -------------------------------------------------------------------------------------------- */

typedef enum rwkv_stop_reason {
    RWKV_STOP_LENGTH = 0,      /* max_tokens generated */
    RWKV_STOP_TOKEN = 1,       /* a stop token was sampled (not fed to the state) */
    RWKV_STOP_STRING = 2,      /* a stop string appeared (its tokens were fed to the state) */
    RWKV_STOP_CANCELLED = 3    /* the callback or the cancel flag asked to stop */
} rwkv_stop_reason;

typedef struct rwkv_generate_params {
    int max_tokens;                /* default 256 */
    const char* const* stop_strings; /* n_stop_strings strings, e.g. {"\n\n"}; default none */
    size_t n_stop_strings;
    const int32_t* stop_tokens;    /* default: token 0 (end of text) */
    size_t n_stop_tokens;
    const volatile int* cancel;    /* optional: generation stops when *cancel becomes non-zero (e.g. from SIGINT) */
} rwkv_generate_params;

RWKV_API rwkv_generate_params rwkv_generate_default_params(void);

/* Called for each generated token with the text it completes (possibly empty while a UTF-8 character or a
 * possible stop string is held back; token = -1 for the last held-back text). Return non-zero to stop. */
typedef int (*rwkv_token_callback)(int32_t token, const char* text, size_t n_bytes, void* user_data);

typedef struct rwkv_generate_result {
    size_t n_prompt_tokens;
    size_t n_generated_tokens; /* tokens fed to the state after the prompt */
    rwkv_stop_reason stop_reason;
    double prompt_seconds;
    double generate_seconds;
} rwkv_generate_result;

/* Feed `prompt` into `state` (sequence mode), then sample and decode until a stop condition, streaming through
 * `callback` (may be NULL). `tokenizer` may be NULL only when no stop strings are given (no text is produced).
 * `out_result` may be NULL. */
RWKV_API rwkv_status rwkv_generate(rwkv_context* ctx, rwkv_state* state, const rwkv_tokenizer* tokenizer,
                                   rwkv_sampler* sampler, const int32_t* prompt, size_t n_prompt,
                                   const rwkv_generate_params* params, rwkv_token_callback callback,
                                   void* user_data, rwkv_generate_result* out_result);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_RWKV_H */
