/* batched: several conversations in one context. Each has its own state and sampler; every step decodes one
 * token of every unfinished conversation in a single rwkv_decode_batch call, which reads the weights once for the
 * whole batch instead of once per conversation.
 *
 *   batched MODEL.pth ["PROMPT" ...]      (default: three prompts)
 */
#include <rwkv/rwkv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 16
#define MAX_NEW 64 /* tokens generated per conversation at most */

static int check(rwkv_status status) {
    if (status != RWKV_STATUS_OK) fprintf(stderr, "error: %s\n", rwkv_last_error_message());
    return status != RWKV_STATUS_OK;
}

int main(int argc, char** argv) {
    static const char* default_prompts[] = {
        "User: Name a bird.\n\nAssistant:", "User: Name a fish.\n\nAssistant:", "User: Name a tree.\n\nAssistant:"};
    const char** prompts = argc > 2 ? (const char**)argv + 2 : default_prompts;
    const int n_seq = argc > 2 ? (argc - 2 < MAX_SEQ ? argc - 2 : MAX_SEQ) : 3;
    rwkv_model* model = NULL;
    rwkv_context* ctx = NULL;
    rwkv_tokenizer* tokenizer = NULL;
    rwkv_state* states[MAX_SEQ] = {NULL};
    rwkv_sampler* samplers[MAX_SEQ] = {NULL};
    int32_t generated[MAX_SEQ][MAX_NEW];
    int n_generated[MAX_SEQ] = {0}, done[MAX_SEQ] = {0};
    float* logits = NULL;       /* [n_seq][n_vocab]: row i holds conversation i's next-token logits */
    float* batch_logits = NULL; /* [n_seq][n_vocab]: what rwkv_decode_batch returns, in batch order */
    char* text = NULL;
    rwkv_model_info info;
    int failed = 1;
    if (argc < 2) return fprintf(stderr, "usage: %s MODEL [PROMPT...]\n", argv[0]), 2;

    if (check(rwkv_model_load(argv[1], NULL, &model)) || check(rwkv_model_get_info(model, &info)) ||
        check(rwkv_context_init(model, NULL, &ctx)) || check(rwkv_tokenizer_load(NULL, &tokenizer)))
        goto cleanup;
    const size_t V = (size_t)info.n_vocab;
    logits = malloc(sizeof(float) * V * n_seq);
    batch_logits = malloc(sizeof(float) * V * n_seq);
    if (!logits || !batch_logits) goto cleanup;

    /* Prefill each prompt into its own state (sequence mode), keeping the logits after its last token. */
    for (int i = 0; i < n_seq; i++) {
        rwkv_sampler_params sp = rwkv_sampler_default_params();
        sp.seed = (uint64_t)i + 1;
        int32_t ids[1024];
        size_t n_ids = 0;
        if (check(rwkv_state_init(model, &states[i])) || check(rwkv_sampler_init(&sp, info.n_vocab, &samplers[i])) ||
            check(rwkv_tokenizer_encode(tokenizer, prompts[i], strlen(prompts[i]), ids, 1024, &n_ids)) ||
            check(rwkv_eval(ctx, states[i], ids, n_ids, RWKV_LOGITS_LAST, logits + i * V, V)))
            goto cleanup;
    }

    /* Decode: sample one token per unfinished conversation, then advance them all in one batched call. */
    for (int step = 0; step < MAX_NEW; step++) {
        rwkv_state* batch_states[MAX_SEQ];
        int32_t batch_tokens[MAX_SEQ];
        int rows[MAX_SEQ], n = 0;
        for (int i = 0; i < n_seq; i++) {
            int32_t token;
            if (done[i]) continue;
            if (check(rwkv_sampler_sample(samplers[i], logits + i * V, V, &token))) goto cleanup;
            if (token == 0) { /* end of text */
                done[i] = 1;
                continue;
            }
            if (check(rwkv_sampler_accept(samplers[i], tokenizer, token))) goto cleanup;
            generated[i][n_generated[i]++] = token;
            batch_states[n] = states[i], batch_tokens[n] = token, rows[n] = i, n++;
        }
        if (n == 0) break;
        if (check(rwkv_decode_batch(ctx, batch_states, batch_tokens, (size_t)n, batch_logits, V * n))) goto cleanup;
        for (int b = 0; b < n; b++) memcpy(logits + rows[b] * V, batch_logits + b * V, sizeof(float) * V);
    }

    for (int i = 0; i < n_seq; i++) {
        size_t n_bytes = 0; /* a size query first (text NULL, capacity 0), then the bytes */
        if (check(rwkv_tokenizer_decode(tokenizer, generated[i], (size_t)n_generated[i], NULL, 0, &n_bytes)) ||
            !(text = realloc(text, n_bytes + 1)) ||
            check(rwkv_tokenizer_decode(tokenizer, generated[i], (size_t)n_generated[i], text, n_bytes, &n_bytes)))
            goto cleanup;
        printf("--- conversation %d (%d tokens)\n%s", i, n_generated[i], prompts[i]);
        fwrite(text, 1, n_bytes, stdout); /* not NUL-terminated; may hold any byte */
        printf("\n");
    }
    failed = 0;

cleanup:
    free(text);
    free(batch_logits);
    free(logits);
    for (int i = 0; i < MAX_SEQ; i++) {
        rwkv_sampler_free(samplers[i]);
        rwkv_state_free(states[i]);
    }
    rwkv_tokenizer_free(tokenizer);
    rwkv_context_free(ctx);
    rwkv_model_free(model);
    return failed;
}
