/* librwkv: RWKV-7 ("Goose") inference, C API. Valid C99 and C++; docs/api.md is the same manual, with examples.
 *
 * Handles and their life cycle (every handle is opaque; each *_init / *_load has its *_free)
 *   rwkv_model      immutable weights on one device (rwkv_model_load). Shared, read-only, by any number of contexts,
 *                   states and threads. Free it last: after every context and state made from it.
 *   rwkv_context    scratch buffers and worker threads to run a model (rwkv_context_init). One thread at a time.
 *   rwkv_state      one sequence's recurrent state (rwkv_state_init): per layer, time-mix shift [C], WKV
 *                   [H][64][64] fp32, channel-mix shift [C]. It is the whole memory of a conversation: copy it to
 *                   branch, save it to resume. Works with any context of its model. One thread at a time.
 *   rwkv_tokenizer  the World vocabulary (rwkv_tokenizer_load). Immutable: shared by any number of threads.
 *   rwkv_sampler    sampling parameters plus the penalty counts of one reply (rwkv_sampler_init). One thread at a
 *                   time.
 *   A typical program: load a model and a tokenizer once; per worker thread one context; per conversation one state
 *   and one sampler; free in the reverse order.
 *
 * Threading
 *   "One thread at a time" means: calls that take the same context, state or sampler must not overlap; move it
 *   between threads freely. A call may use several objects at once (rwkv_eval: a context and a state), each under
 *   its own rule. Functions without a handle (rwkv_version, rwkv_status_string, *_default_params, ...) and
 *   everything on a model or tokenizer are safe from any thread. Two contexts on one model, each with its own
 *   states, run in parallel and give the same results as one context used in turn.
 *
 * Errors
 *   Every fallible call returns an rwkv_status: RWKV_STATUS_OK (0) or the reason it failed; the results go
 *   through out-parameters, which are set only on success unless stated otherwise (a non-NULL out-handle pointer
 *   receives NULL on failure). rwkv_last_error_message() then gives a message for the calling thread, naming what
 *   went wrong and where. NULL where a handle or buffer is required, an out-of-range value, or a buffer too small is
 *   RWKV_STATUS_INVALID_ARGUMENT, never a crash. Every *_free(NULL) is a no-op; using a handle after its free is
 *   undefined (not detected). Any call may also return RWKV_STATUS_OUT_OF_MEMORY or RWKV_STATUS_INTERNAL (a bug).
 *
 * Sizes and ownership
 *   Buffers are counted in elements (floats, ids) or bytes as named, passed with their capacity, and always owned
 *   by the caller; the library keeps no pointer to them after the call returns. Strings passed in are copied.
 *   Strings returned (const char*) belong to the library, as documented for each.
 *
 * The library never prints and never exits: it reports through the log callback (default: warnings and errors to
 * stderr).
 */
#ifndef RWKV_RWKV_H
#define RWKV_RWKV_H

#include <stddef.h>
#include <stdint.h>

#include "rwkv/version.h" /* generated: RWKV_VERSION_MAJOR/MINOR/PATCH/STRING/NUMBER, RWKV_SHARED_LIBRARY */

#ifdef __cplusplus
extern "C" {
#endif

/* RWKV_API marks the exported functions. The library is compiled with hidden visibility and RWKV_BUILDING, so
 * a shared librwkv exports these functions and nothing else; for a consumer the macro is empty (or a DLL import
 * on Windows). */
#if defined(RWKV_BUILDING)
#if defined(_WIN32)
#define RWKV_API __declspec(dllexport)
#else
#define RWKV_API __attribute__((visibility("default")))
#endif
#elif defined(_WIN32) && RWKV_SHARED_LIBRARY
#define RWKV_API __declspec(dllimport)
#else
#define RWKV_API
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

/* A static English name for a status ("ok", "invalid argument", ...); "unknown status" for a value outside the
 * enum. Never NULL; never freed. Thread-safe. */
RWKV_API const char* rwkv_status_string(rwkv_status status);

/* The message of the last failed call on the calling thread, "" if none has failed. Errors on one thread never
 * show on another. Successful calls leave it as it was. The string belongs to the library and stays valid until
 * the next failing call on this thread. */
RWKV_API const char* rwkv_last_error_message(void);

typedef enum rwkv_log_level {
    RWKV_LOG_DEBUG = 0,
    RWKV_LOG_INFO = 1,
    RWKV_LOG_WARN = 2,
    RWKV_LOG_ERROR = 3
} rwkv_log_level;

typedef void (*rwkv_log_callback)(rwkv_log_level level, const char* message, void* user_data);

/* Route library messages to `callback` (NULL restores the default: WARN and ERROR to stderr as "librwkv: ...").
 * Process-wide. The callback may be called from any thread that calls into the library (never two calls at once:
 * calls are serialised); `message` is valid during the call only. Thread-safe, but set it before loading models
 * to see their messages. */
RWKV_API void rwkv_log_set(rwkv_log_callback callback, void* user_data);

/* The linked library's version, "MAJOR.MINOR.PATCH" (the headers' is RWKV_VERSION_STRING, in rwkv/version.h).
 * Static storage. Thread-safe. */
RWKV_API const char* rwkv_version(void);

/* One line describing the build and the machine: version, compiler, build type, shared or static, CUDA toolkit and
 * architectures compiled for, CPU threads and the CPU kernel family in use (scalar, avx2, avx512), whether CUDA was
 * compiled in, how many devices are visible and the first one's name with the driver and runtime versions.
 * Computed once (the first call queries the devices); static storage. Thread-safe. */
RWKV_API const char* rwkv_system_info(void);

/* ---- model ------------------------------------------------------------------------------------------------- */

typedef struct rwkv_model rwkv_model;
typedef struct rwkv_context rwkv_context;
typedef struct rwkv_state rwkv_state;

typedef enum rwkv_backend {
    RWKV_BACKEND_AUTO = 0, /* $RWKV_BACKEND (cpu, cuda or auto) when set; else CUDA when compiled in and the
                            * requested device is present; else CPU */
    RWKV_BACKEND_CPU = 1,
    RWKV_BACKEND_CUDA = 2
} rwkv_backend;

typedef enum rwkv_dtype {
    RWKV_DTYPE_AUTO = -1, /* rwkv_model_params.weight_dtype only: keep the dtype stored in the file */
    RWKV_DTYPE_F32 = 0,
    RWKV_DTYPE_F16 = 1,
    RWKV_DTYPE_BF16 = 2
} rwkv_dtype;

typedef enum rwkv_file_format { RWKV_FORMAT_PTH = 0, RWKV_FORMAT_SAFETENSORS = 1 } rwkv_file_format;

/* Load progress: called on the loading thread with the fraction done, non-decreasing in [0, 1]: once with 0
 * before any work, at steps in between, and once with 1 when the model is ready. Return 0 to go on, non-zero to
 * cancel: rwkv_model_load then frees everything it made and returns RWKV_STATUS_CANCELLED. */
typedef int (*rwkv_progress_callback)(float progress, void* user_data);

typedef struct rwkv_model_params {
    rwkv_backend backend;    /* default RWKV_BACKEND_AUTO */
    int n_threads;           /* CPU worker threads for contexts of this model; 0 = all cores (default) */
    int device;              /* CUDA device ordinal for the CUDA backend; default 0; the CPU backend ignores it */
    rwkv_dtype weight_dtype; /* dtype of the large matrices in memory. CPU: RWKV_DTYPE_AUTO (default): as stored,
                              * used in place from the mapped file; F32/F16/BF16: converted at load into memory owned
                              * by the model (F32 doubles a bf16 model's size; F16 may overflow to inf).
                              * CUDA: the matrices are uploaded once at load, converted on the device to F16 for
                              * RWKV_DTYPE_AUTO, else to the dtype asked for; vectors and the embedding stay F32 */
    rwkv_progress_callback progress_callback; /* may be NULL (default) */
    void* progress_user_data;                 /* passed to progress_callback */
} rwkv_model_params;

/* Defaults: AUTO backend, all cores, device 0, weights as stored, no progress callback. Thread-safe. */
RWKV_API rwkv_model_params rwkv_model_default_params(void);

/* Load a .pth (torch.save zip) or .safetensors RWKV-7 checkpoint, native BlinkDL or Hugging Face (fla) names, and
 * set *out_model to a new model the caller frees with rwkv_model_free. The file is memory-mapped and its tensors
 * used in place (unless params->weight_dtype converts them); it must not change while the model lives. `params`
 * may be NULL for the defaults. Thread-safe (loads on different threads are independent).
 * Returns OK; INVALID_ARGUMENT (NULL path or out_model, a bad parameter); IO_ERROR (cannot open or read);
 * FORMAT_ERROR (malformed, missing tensor, wrong shape); UNSUPPORTED (a variant with different math: DeepEmbed,
 * Pile vocabulary, RWKV-4/5/6; a backend this build or machine lacks); CANCELLED (the progress callback said so);
 * OUT_OF_MEMORY. On failure *out_model is NULL. */
RWKV_API rwkv_status rwkv_model_load(const char* path, const rwkv_model_params* params, rwkv_model** out_model);
/* Frees the model. Free its contexts and states first. NULL is a no-op. */
RWKV_API void rwkv_model_free(rwkv_model* model);

/* A model of a real RWKV-7 shape with deterministic random weights, built in memory (for benchmarks and tests),
 * freed with rwkv_model_free. `synthetic` and `params` may be NULL for the defaults. Returns OK, INVALID_ARGUMENT
 * (unknown preset, bad parameter), OUT_OF_MEMORY. Thread-safe.
 * Presets: "tiny" (L2 C128, V256), "0.1b", "0.4b", "1.5b", "2.9b", "7.2b", "13.3b" (V 65536). Weights are drawn
 * at realistic scales; ffn_sparsity >= 0 biases the FFN key weights so that this fraction of the ReLU²
 * pre-activations is negative (trained models: ~0.9), < 0 leaves the natural ~0.5 of random weights. */
typedef struct rwkv_synthetic_params {
    const char* preset; /* default "0.1b" */
    rwkv_dtype dtype;   /* default BF16 */
    float ffn_sparsity; /* default -1 (natural) */
    uint64_t seed;      /* default 1 */
    int n_vocab;        /* 0 = the preset's (65536; 256 for "tiny") */
} rwkv_synthetic_params;

RWKV_API rwkv_synthetic_params rwkv_synthetic_default_params(void);
RWKV_API rwkv_status rwkv_model_load_synthetic(const rwkv_synthetic_params* synthetic, const rwkv_model_params* params,
                                               rwkv_model** out_model);

typedef struct rwkv_model_info {
    rwkv_file_format format;
    rwkv_dtype weight_dtype;             /* dtype of the large matrices in memory (as stored unless converted) */
    rwkv_backend backend;                /* the backend actually used */
    int n_layer;                         /* L */
    int n_embd;                          /* C */
    int n_head;                          /* H = C / head_size */
    int head_size;                       /* N = 64 */
    int n_vocab;                         /* V, usually 65536 */
    int n_ffn;                           /* F, usually 4C */
    int d_decay, d_aaa, d_value, d_gate; /* LoRA widths Dw, Da, Dv, Dg */
    int64_t n_params;                    /* parameters in the file's RWKV tensors */
    int64_t n_bytes;                     /* bytes of those tensors as stored in the file */
    int64_t state_bytes;                 /* bytes of one rwkv_state's data (fp32): L*(2C + H*64*64)*4 */
    double ffn_sparsity; /* synthetic models: fraction of ReLU² pre-activations <= 0 measured at creation; -1 for
                            models loaded from files (unknown until run) */
} rwkv_model_info;

/* Fills *out_info. Returns OK or INVALID_ARGUMENT (NULL argument). Thread-safe. */
RWKV_API rwkv_status rwkv_model_get_info(const rwkv_model* model, rwkv_model_info* out_info);

/* Memory a model or a context holds in its backend's memory (device memory for CUDA, host memory for the CPU). */
typedef struct rwkv_memory_info {
    rwkv_backend backend;       /* RWKV_BACKEND_CPU or RWKV_BACKEND_CUDA */
    int device;                 /* CUDA device ordinal; -1 for the CPU */
    char device_name[128];      /* "NVIDIA H100 80GB HBM3"; "" for the CPU. NUL-terminated */
    rwkv_dtype weight_dtype;    /* dtype of the large matrices in the backend's memory */
    int64_t weight_bytes;       /* the weights the forward reads, in that memory (CPU: mapped from the file or
                                 * owned by the model; CUDA: the device copies) */
    int64_t state_bytes;        /* one rwkv_state (fp32, in the backend's memory) */
    int64_t scratch_bytes;      /* rwkv_context_get_memory: the context's activations, workspaces and staging,
                                 * all allocated by rwkv_context_init; 0 from rwkv_model_get_memory */
    int64_t device_free_bytes;  /* CUDA: free device memory at the call (cudaMemGetInfo); 0 for the CPU */
    int64_t device_total_bytes; /* CUDA: the device's memory; 0 for the CPU */
    int cuda_graphs;            /* rwkv_context_get_memory on CUDA: 1 while decode steps replay CUDA graphs, 0 when
                                 * off ($RWKV_CUDA_GRAPHS=0) or after a capture failure (logged once); 0 for the CPU */
} rwkv_memory_info;

/* Fill *out for the model (weights, one state) or the context (the same plus its scratch). Return OK or
 * INVALID_ARGUMENT (NULL argument). Thread-safe for a model; a context one thread at a time. */
RWKV_API rwkv_status rwkv_model_get_memory(const rwkv_model* model, rwkv_memory_info* out);
RWKV_API rwkv_status rwkv_context_get_memory(const rwkv_context* ctx, rwkv_memory_info* out);

/* ---- context ----------------------------------------------------------------------------------------------- */

typedef struct rwkv_context_params {
    int n_threads;      /* 0 = the model's n_threads */
    int max_seq_tokens; /* tokens per forward chunk in rwkv_eval (scratch is sized for it); default 256 */
} rwkv_context_params;

/* Defaults: the model's threads, 256 tokens per chunk. Thread-safe. */
RWKV_API rwkv_context_params rwkv_context_default_params(void);

/* Scratch buffers (sized for max_seq_tokens) and worker threads to run `model`; *out_ctx is freed with
 * rwkv_context_free, before the model. On CUDA a context owns one stream, one cuBLAS handle and every device
 * buffer it will use (nothing is allocated per token), and replays each decode step (rwkv_decode, and
 * rwkv_decode_batch per batch size) from a CUDA graph captured the first time; $RWKV_CUDA_GRAPHS=0 turns graphs
 * off (same results, bit for bit). `params` may be NULL. The context reads the model, which must outlive it.
 * Thread-safety: the call itself is thread-safe; the context is then used by one thread at a time. Several
 * contexts may run one model concurrently, one per thread.
 * Returns OK, INVALID_ARGUMENT (NULL model or out_ctx, n_threads < 0, max_seq_tokens outside [1, 65536]),
 * OUT_OF_MEMORY, BACKEND_ERROR. On failure *out_ctx is NULL. */
RWKV_API rwkv_status rwkv_context_init(const rwkv_model* model, const rwkv_context_params* params,
                                       rwkv_context** out_ctx);
/* Frees the context and stops its threads. It must not be in use. NULL is a no-op. */
RWKV_API void rwkv_context_free(rwkv_context* ctx);

/* ---- state ------------------------------------------------------------------------------------------------- */

/* All state functions: thread-safe for different states; a state is used by one thread at a time (reading it with
 * copy/get/save/serialize from several threads at once is fine while nobody writes it). A state belongs to the
 * model it was made for and works with any context of that model (or of a model of the same shape). */

/* A new all-zero state for `model` (the start of a conversation), freed with rwkv_state_free before the model.
 * Returns OK, INVALID_ARGUMENT (NULL argument), OUT_OF_MEMORY. On failure *out_state is NULL. */
RWKV_API rwkv_status rwkv_state_init(const rwkv_model* model, rwkv_state** out_state);
/* NULL is a no-op. */
RWKV_API void rwkv_state_free(rwkv_state* state);
/* Back to all zeros. Returns OK or INVALID_ARGUMENT (NULL). */
RWKV_API rwkv_status rwkv_state_reset(rwkv_state* state);
/* dst <- src, a deep copy (both of the same model shape; dst == src is allowed). Use it to branch a conversation.
 * Returns OK or INVALID_ARGUMENT (NULL, another model shape). */
RWKV_API rwkv_status rwkv_state_copy(rwkv_state* dst, const rwkv_state* src);
/* Number of floats in the state's data: L * (2C + H*64*64) (rwkv_model_info.state_bytes / 4); 0 for NULL. */
RWKV_API size_t rwkv_state_size(const rwkv_state* state);
/* Copy the state out / in as floats, per layer [att_shift C][wkv H*64*64 (head, value, key)][ffn_shift C].
 * `n_floats` must equal rwkv_state_size(). Returns OK or INVALID_ARGUMENT (NULL, wrong n_floats). */
RWKV_API rwkv_status rwkv_state_get_data(const rwkv_state* state, float* out, size_t n_floats);
RWKV_API rwkv_status rwkv_state_set_data(rwkv_state* state, const float* data, size_t n_floats);
/* Save to `path`: a versioned binary file with the model's shape fingerprint and a checksum, written atomically
 * (temporary file in the same directory, flushed, renamed). Returns OK, INVALID_ARGUMENT (NULL), IO_ERROR. */
RWKV_API rwkv_status rwkv_state_save(const rwkv_state* state, const char* path);
/* Load a file written by rwkv_state_save. Returns OK, INVALID_ARGUMENT (NULL), IO_ERROR (cannot read),
 * FORMAT_ERROR (not a state file, another version, another model shape, truncated, checksum mismatch); on error
 * `state` is untouched. */
RWKV_API rwkv_status rwkv_state_load(rwkv_state* state, const char* path);
/* The same bytes as the state file, in memory (to keep a conversation in a database, a save file, ...).
 * Sets *n_bytes; writes when capacity >= *n_bytes, else INVALID_ARGUMENT; buffer = NULL with capacity 0 is a size
 * query (returns OK). Deserialising checks everything rwkv_state_load checks (FORMAT_ERROR) and leaves `state`
 * untouched on error. */
RWKV_API rwkv_status rwkv_state_serialize(const rwkv_state* state, void* buffer, size_t capacity, size_t* n_bytes);
RWKV_API rwkv_status rwkv_state_deserialize(rwkv_state* state, const void* buffer, size_t n_bytes);
/* Initialise from a state-tuning checkpoint (RWKV-PEFT: blocks.N.att.time_state [H,64,64], .pth or
 * .safetensors): WKV = time_state (no transpose), shifts = 0. Returns OK, INVALID_ARGUMENT (NULL), IO_ERROR,
 * FORMAT_ERROR (not a state-tuning file, wrong shapes or layer count). */
RWKV_API rwkv_status rwkv_state_load_tuning(rwkv_state* state, const char* path);

/* ---- evaluation -------------------------------------------------------------------------------------------- */

typedef enum rwkv_logits_mode {
    RWKV_LOGITS_NONE = 0, /* only advance the state */
    RWKV_LOGITS_LAST = 1, /* logits after the last token: n_vocab floats */
    RWKV_LOGITS_ALL = 2   /* logits after every token: n_tokens * n_vocab floats, row-major */
} rwkv_logits_mode;

/* Prefill: feed `n_tokens` tokens into `state` in sequence mode (chunks of max_seq_tokens), writing logits as
 * `mode` says into `logits` (capacity `n_logits` floats, caller-owned; may be NULL for RWKV_LOGITS_NONE). The
 * result equals feeding the tokens one by one with rwkv_decode. Thread-safety: `ctx` and `state` one thread at a
 * time. Returns OK; INVALID_ARGUMENT (NULL, unknown mode, logits buffer too small, no tokens but logits wanted,
 * a token id < 0 or >= n_vocab, a state of another model) with the state untouched; BACKEND_ERROR,
 * OUT_OF_MEMORY. */
RWKV_API rwkv_status rwkv_eval(rwkv_context* ctx, rwkv_state* state, const int32_t* tokens, size_t n_tokens,
                               rwkv_logits_mode mode, float* logits, size_t n_logits);

/* Decode: one token in one-token mode; the logits after it go to `logits` (n_logits >= n_vocab floats), which may
 * be NULL to only advance the state. Same statuses and thread-safety as rwkv_eval. */
RWKV_API rwkv_status rwkv_decode(rwkv_context* ctx, rwkv_state* state, int32_t token, float* logits, size_t n_logits);

/* Batched decode: one token for each of `n_seq` independent sequences in one step (their projections share one
 * pass over the weights). tokens[i] is fed into states[i] (distinct states of this model); `logits` ([n_seq,
 * n_vocab], row i for sequence i) may be NULL. Equal to n_seq rwkv_decode calls up to rounding. Statuses:
 * INVALID_ARGUMENT (NULL, a token out of range, a state of another model or repeated, logits too small), and then
 * no state has changed. Thread-safety: as rwkv_eval, for the context and every state. */
RWKV_API rwkv_status rwkv_decode_batch(rwkv_context* ctx, rwkv_state* const* states, const int32_t* tokens,
                                       size_t n_seq, float* logits, size_t n_logits);

/* ---- tokenizer (RWKV World vocabulary) --------------------------------------------------------------------- */

typedef struct rwkv_tokenizer rwkv_tokenizer;

/* Load a vocabulary file (rwkv_vocab_v20230424.txt format) into *out_tokenizer, freed with rwkv_tokenizer_free.
 * NULL path: the default search: $RWKV_VOCAB, then share/rwkv/ beside the executable's directory
 * (../share/rwkv) and the install prefix's share/rwkv. Thread-safety: thread-safe; a loaded tokenizer is immutable
 * and every function below may use it from any number of threads at once.
 * Returns OK, INVALID_ARGUMENT (NULL out_tokenizer), IO_ERROR (cannot read; not found, listing where it looked),
 * FORMAT_ERROR (malformed, naming the line). On failure *out_tokenizer is NULL. */
RWKV_API rwkv_status rwkv_tokenizer_load(const char* path, rwkv_tokenizer** out_tokenizer);
/* NULL is a no-op. */
RWKV_API void rwkv_tokenizer_free(rwkv_tokenizer* tokenizer);
/* Ids with a meaning: 65530 for World (0 = end of text, 1..65529 from the file); 0 for NULL. */
RWKV_API size_t rwkv_tokenizer_vocab_size(const rwkv_tokenizer* tokenizer);

/* Greedy longest-match tokenization of `n_bytes` bytes (UTF-8 text; any bytes are accepted; no terminator
 * needed). Sets *n_ids to the number of ids (never more than n_bytes); writes them when `capacity` >= *n_ids, else
 * returns INVALID_ARGUMENT ("buffer too small") and writes nothing. ids = NULL with capacity 0 is a size query:
 * it only sets *n_ids and returns OK. INVALID_ARGUMENT also for NULL tokenizer, n_ids, or text with n_bytes > 0. */
RWKV_API rwkv_status rwkv_tokenizer_encode(const rwkv_tokenizer* tokenizer, const char* text, size_t n_bytes,
                                           int32_t* ids, size_t capacity, size_t* n_ids);
/* The bytes of `n_ids` tokens (may be invalid UTF-8 when a character is split). Sets *n_bytes; writes the bytes
 * (no terminator) when `capacity` >= *n_bytes, else INVALID_ARGUMENT; text = NULL with capacity 0 is a size
 * query. INVALID_ARGUMENT for ids < 0 or >= 65536, NULL tokenizer or n_bytes, NULL ids with n_ids > 0. */
RWKV_API rwkv_status rwkv_tokenizer_decode(const rwkv_tokenizer* tokenizer, const int32_t* ids, size_t n_ids,
                                           char* text, size_t capacity, size_t* n_bytes);

/* Offset of the first byte of `text` that is not part of well-formed UTF-8, or n_bytes when all of it is (0 for
 * NULL). Thread-safe. */
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

/* Thread-safe. */
RWKV_API rwkv_sampler_params rwkv_sampler_default_params(void);
/* A sampler for logits of n_vocab entries (rwkv_model_info.n_vocab), freed with rwkv_sampler_free. `params` may
 * be NULL for the defaults. A sampler holds the penalty counts of one reply: one thread at a time, and one sampler
 * per concurrent conversation. Returns OK, INVALID_ARGUMENT (NULL out_sampler, n_vocab <= 0, a bad parameter,
 * named in the message), OUT_OF_MEMORY. On failure *out_sampler is NULL. */
RWKV_API rwkv_status rwkv_sampler_init(const rwkv_sampler_params* params, int n_vocab, rwkv_sampler** out_sampler);
/* NULL is a no-op. */
RWKV_API void rwkv_sampler_free(rwkv_sampler* sampler);
/* New parameters; the penalty counts are kept. Returns OK or INVALID_ARGUMENT (NULL, a bad parameter). */
RWKV_API rwkv_status rwkv_sampler_set_params(rwkv_sampler* sampler, const rwkv_sampler_params* params);
/* Tokens that are never sampled (their logit becomes -inf). Replaces the previous list; n_ids = 0 clears it.
 * Returns OK or INVALID_ARGUMENT (NULL, an id outside [0, n_vocab)). */
RWKV_API rwkv_status rwkv_sampler_set_banned(rwkv_sampler* sampler, const int32_t* ids, size_t n_ids);
/* bias[i] is added to the logit of ids[i] before sampling (n pairs). Replaces the previous bias; n = 0 clears it.
 * Returns OK or INVALID_ARGUMENT (NULL, an id outside [0, n_vocab), a non-finite bias). */
RWKV_API rwkv_status rwkv_sampler_set_bias(rwkv_sampler* sampler, const int32_t* ids, const float* bias, size_t n);
/* Apply bans, bias and penalties to `logits` (n_logits == n_vocab floats, modified in place) and choose a token
 * into *out_token. Does not record it: call rwkv_sampler_accept for the token you keep. Returns OK or
 * INVALID_ARGUMENT (NULL, wrong n_logits, a NaN or +inf logit, every token banned). */
RWKV_API rwkv_status rwkv_sampler_sample(rwkv_sampler* sampler, float* logits, size_t n_logits, int32_t* out_token);
/* Record a generated token for the penalties. `tokenizer` (may be NULL) lets whitespace/digit tokens pay the
 * presence penalty only, as the reference pipeline does. Returns OK or INVALID_ARGUMENT (NULL sampler, token
 * outside [0, n_vocab)). */
RWKV_API rwkv_status rwkv_sampler_accept(rwkv_sampler* sampler, const rwkv_tokenizer* tokenizer, int32_t token);
/* Forget the penalty occurrences (start of a new reply). Returns OK or INVALID_ARGUMENT (NULL). */
RWKV_API rwkv_status rwkv_sampler_reset(rwkv_sampler* sampler);

/* ---- generation -------------------------------------------------------------------------------------------- */

typedef enum rwkv_stop_reason {
    RWKV_STOP_LENGTH = 0,   /* max_tokens generated */
    RWKV_STOP_TOKEN = 1,    /* a stop token was sampled (not fed to the state) */
    RWKV_STOP_STRING = 2,   /* a stop string appeared (its tokens were fed to the state) */
    RWKV_STOP_CANCELLED = 3 /* the callback or the cancel flag asked to stop */
} rwkv_stop_reason;

typedef struct rwkv_generate_params {
    int max_tokens;                  /* default 256 */
    const char* const* stop_strings; /* n_stop_strings strings, e.g. {"\n\n"}; default none */
    size_t n_stop_strings;
    const int32_t* stop_tokens; /* default: token 0 (end of text) */
    size_t n_stop_tokens;
    const volatile int* cancel; /* optional: generation stops when *cancel becomes non-zero (e.g. from SIGINT) */
} rwkv_generate_params;

/* Defaults: 256 tokens, no stop strings, stop token 0 (end of text; the array is static), no cancel flag.
 * Thread-safe. */
RWKV_API rwkv_generate_params rwkv_generate_default_params(void);

/* Called on the generating thread for each generated token with the text it completes (`n_bytes` bytes, not
 * NUL-terminated, valid during the call only; possibly empty while a UTF-8 character or a possible stop string is
 * held back; token = -1 for the last held-back text). Return 0 to go on, non-zero to stop (stop_reason
 * RWKV_STOP_CANCELLED; the token was already fed to the state). */
typedef int (*rwkv_token_callback)(int32_t token, const char* text, size_t n_bytes, void* user_data);

typedef struct rwkv_generate_result {
    size_t n_prompt_tokens;
    size_t n_generated_tokens; /* tokens fed to the state after the prompt */
    rwkv_stop_reason stop_reason;
    double prompt_seconds;
    double generate_seconds;
} rwkv_generate_result;

/* Feed `prompt` (n_prompt >= 1 ids) into `state` (sequence mode), then sample, accept and decode one token at a
 * time until a stop condition, streaming through `callback` (may be NULL). Afterwards the state holds the prompt
 * and every generated token except a stop token, ready for the next turn. `tokenizer` may be NULL only when no
 * stop strings are given (no text is produced). `params` and `out_result` may be NULL. Stopping (length, stop
 * token, stop string, callback, cancel flag) is a success: the reason is in out_result->stop_reason.
 * Thread-safety: `ctx`, `state` and `sampler` one thread at a time; the tokenizer may be shared.
 * Returns OK; INVALID_ARGUMENT (NULL, empty prompt, a prompt id outside the vocabulary, a sampler of another
 * vocabulary size, max_tokens < 0, an empty or NULL stop string, stop strings without a tokenizer);
 * BACKEND_ERROR, OUT_OF_MEMORY. */
RWKV_API rwkv_status rwkv_generate(rwkv_context* ctx, rwkv_state* state, const rwkv_tokenizer* tokenizer,
                                   rwkv_sampler* sampler, const int32_t* prompt, size_t n_prompt,
                                   const rwkv_generate_params* params, rwkv_token_callback callback, void* user_data,
                                   rwkv_generate_result* out_result);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_RWKV_H */
