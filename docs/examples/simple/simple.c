/* simple: load a model, feed a prompt, stream the reply. Usage: simple MODEL.pth ["PROMPT"] */
#include <rwkv/rwkv.h>
#include <stdio.h>
#include <string.h>

static int print_text(int32_t token, const char* text, size_t n_bytes, void* user_data) {
    (void)token, (void)user_data;
    fwrite(text, 1, n_bytes, stdout); /* UTF-8, not NUL-terminated */
    fflush(stdout);
    return 0; /* non-zero would stop the reply here */
}

int main(int argc, char** argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s MODEL [PROMPT]\n", argv[0]), 2;
    const char* prompt = argc > 2 ? argv[2] : "User: What do geese eat?\n\nAssistant:";
    const char* stop[] = {"\n\n"};
    rwkv_generate_params gen = rwkv_generate_default_params(); /* also stops at token 0, end of text */
    gen.max_tokens = 200, gen.stop_strings = stop, gen.n_stop_strings = 1;
    rwkv_model* model = NULL;
    rwkv_context* ctx = NULL;
    rwkv_state* state = NULL; /* the conversation so far */
    rwkv_tokenizer* tokenizer = NULL;
    rwkv_sampler* sampler = NULL;
    rwkv_model_info info;
    int32_t ids[4096];
    size_t n_ids = 0;
    /* Each call returns RWKV_STATUS_OK (0) or an error status: stop at the first error. */
    int failed = rwkv_model_load(argv[1], NULL, &model) || rwkv_model_get_info(model, &info) ||
                 rwkv_context_init(model, NULL, &ctx) || rwkv_state_init(model, &state) ||
                 rwkv_tokenizer_load(NULL, &tokenizer) || /* NULL: $RWKV_VOCAB, else share/rwkv */
                 rwkv_sampler_init(NULL, info.n_vocab, &sampler) ||
                 rwkv_tokenizer_encode(tokenizer, prompt, strlen(prompt), ids, 4096, &n_ids) ||
                 rwkv_generate(ctx, state, tokenizer, sampler, ids, n_ids, &gen, print_text, NULL, NULL);
    printf("\n");
    if (failed) fprintf(stderr, "error: %s\n", rwkv_last_error_message());
    rwkv_sampler_free(sampler); /* freeing NULL is a no-op */
    rwkv_tokenizer_free(tokenizer);
    rwkv_state_free(state);
    rwkv_context_free(ctx);
    rwkv_model_free(model); /* last: contexts and states use it */
    return failed;
}
